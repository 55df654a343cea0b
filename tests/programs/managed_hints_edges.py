"""Managed memory hints, the corners: accessed-by lists of several devices and the host, legacy
entry points naming CU_DEVICE_CPU, several attributes in one query, prefetches into a stream
capture and in a batch, and the errors (wrong memory, sizes, devices, flags).  Every outcome,
error codes included, goes into the RESULT line, so a run through the proxy must answer exactly
as the simulated GPU does.  Needs two devices."""
import ctypes

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, init, name, require, result

A = cu.CUmem_advise
R = cu.CUmem_range_attribute
LOC = cu.CUmemLocationType
CPU = int(cu.CU_DEVICE_CPU)
dev, ctx = init()
require(check(cu.cuDeviceGetCount()) >= 2, "two devices")
out = {}


def code(r):
    return name(r[0] if isinstance(r, tuple) else r)


def location(kind, ident=0):
    loc = cu.CUmemLocation()
    loc.type = kind
    loc.id = ident
    return loc


def legacy(symbol, *argtypes):
    """An entry point by its CUDA 8 ABI (a device number, CU_DEVICE_CPU for the host) or with every
    attribute (cuda-python binds only the newest ABI, and refuses the *_TYPE/*_ID attributes)."""
    pfn = check(cu.cuGetProcAddress(symbol, 8000, cu.CUdriverProcAddress_flags.CU_GET_PROC_ADDRESS_DEFAULT))[0]
    return ctypes.CFUNCTYPE(ctypes.c_int, *argtypes)(int(pfn))


advise8 = legacy(b"cuMemAdvise", ctypes.c_uint64, ctypes.c_size_t, ctypes.c_int, ctypes.c_int)
prefetch8 = legacy(b"cuMemPrefetchAsync", ctypes.c_uint64, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p)
range_attribute = legacy(b"cuMemRangeGetAttribute", ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint64,
                         ctypes.c_size_t)


def attr(key, size, attribute, ptr, count):
    buf = (ctypes.c_int * (size // 4 + 1))(*([99] * (size // 4 + 1)))
    r = range_attribute(buf, size, int(attribute), ptr, count)
    out[key] = [r, list(buf[:size // 4]) if r == 0 else None]


N = 8192
m = int(check(cu.cuMemAllocManaged(N, cu.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL)))
pinned = check(cu.cuMemAllocHost(4096))
d = check(cu.cuMemAlloc(4096))
d0, d1, host = location(LOC.CU_MEM_LOCATION_TYPE_DEVICE, 0), location(LOC.CU_MEM_LOCATION_TYPE_DEVICE, 1), \
    location(LOC.CU_MEM_LOCATION_TYPE_HOST)

# Accessed-by: devices ascending, then the host; the rest of the array says "no device".
for loc in (d1, host, d0):
    check(cu.cuMemAdvise(m, N, A.CU_MEM_ADVISE_SET_ACCESSED_BY, loc))
for size in (16, 12, 8, 4, 6, 0):
    attr(f"accessed_by_{size}", size, R.CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, m, N)
check(cu.cuMemAdvise(m, N, A.CU_MEM_ADVISE_UNSET_ACCESSED_BY, d1))
attr("accessed_by_after_unset", 16, R.CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, m, N)


# Part of a block: the advice holds for the whole allocation (as libsimgpu keeps it).
out["preferred_cpu"] = advise8(m + 4096, 4096, int(A.CU_MEM_ADVISE_SET_PREFERRED_LOCATION), CPU)
for key, a in (("preferred", R.CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION),
               ("preferred_type", R.CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE),
               ("preferred_id", R.CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID)):
    attr(key, 4, a, m, N)
out["unset_preferred"] = code(cu.cuMemAdvise(m, N, A.CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION, d0))
attr("preferred_after_unset", 4, R.CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, m, N)
out["unset_read_mostly"] = code(cu.cuMemAdvise(m, N, A.CU_MEM_ADVISE_UNSET_READ_MOSTLY, d0))

# Errors: memory that is not managed, ranges past the block or empty, devices that do not exist,
# locations of no kind, sizes that do not fit the attribute.
out["advise_pinned"] = code(cu.cuMemAdvise(pinned, 4096, A.CU_MEM_ADVISE_SET_READ_MOSTLY, d0))
out["advise_device"] = code(cu.cuMemAdvise(d, 4096, A.CU_MEM_ADVISE_SET_READ_MOSTLY, d0))
out["advise_past_end"] = code(cu.cuMemAdvise(m + 4096, N, A.CU_MEM_ADVISE_SET_READ_MOSTLY, d0))
out["advise_empty"] = code(cu.cuMemAdvise(m, 0, A.CU_MEM_ADVISE_SET_READ_MOSTLY, d0))
out["advise_bad_device"] = code(cu.cuMemAdvise(m, N, A.CU_MEM_ADVISE_SET_PREFERRED_LOCATION,
                                               location(LOC.CU_MEM_LOCATION_TYPE_DEVICE, 7)))
out["advise_no_location"] = code(cu.cuMemAdvise(m, N, A.CU_MEM_ADVISE_SET_ACCESSED_BY,
                                                location(LOC.CU_MEM_LOCATION_TYPE_INVALID)))
attr("attr_pinned", 4, R.CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, pinned, 4096)
attr("attr_size_8", 8, R.CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, m, N)

# Prefetches: stream-ordered, remembered per block; flags must be 0.
s = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
out["prefetch_d1"] = code(cu.cuMemPrefetchAsync(m, N, d1, 0, s))
for key, a in (("last_prefetch", R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION),
               ("last_prefetch_type", R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE),
               ("last_prefetch_id", R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID)):
    attr(key, 4, a, m, N)
out["prefetch_flags"] = code(cu.cuMemPrefetchAsync(m, N, d0, 1, s))
out["prefetch_pinned"] = code(cu.cuMemPrefetchAsync(pinned, 4096, d0, 0, s))
out["prefetch_bad_device"] = code(cu.cuMemPrefetchAsync(m, N, location(LOC.CU_MEM_LOCATION_TYPE_DEVICE, 9), 0, s))
out["prefetch_cpu_default_stream"] = prefetch8(m, N, CPU, None)
attr("last_prefetch_cpu", 4, R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, m, N)
out["prefetch8_d1"] = prefetch8(m, N, 1, int(s))
attr("last_prefetch_d1", 4, R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, m, N)
out["advise8_bad_device"] = advise8(m, N, int(A.CU_MEM_ADVISE_SET_ACCESSED_BY), 5)

# Several attributes in one query.
r = cu.cuMemRangeGetAttributes([4, 4, 12], [R.CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY,
                                            R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION,
                                            R.CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY], 3, m, N)
out["attributes"] = [code(r), repr(r[1]) if r[0] == cu.CUresult.CUDA_SUCCESS else None]

# A prefetch on a capturing stream is a node of the capture's graph.
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL))
out["prefetch_captured"] = code(cu.cuMemPrefetchAsync(m, N, d0, 0, s))
graph = check(cu.cuStreamEndCapture(s))
nodes, count = check(cu.cuGraphGetNodes(graph, 8))
out["captured_nodes"] = [check(cu.cuGraphNodeGetType(n)).name for n in nodes[:count]] if count else []
check(cu.cuGraphDestroy(graph))
attr("last_prefetch_captured", 4, R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, m, N)

# A batch: each range to the location its index starts.
if hasattr(cu, "cuMemPrefetchBatchAsync"):
    r = cu.cuMemPrefetchBatchAsync([cu.CUdeviceptr(m), cu.CUdeviceptr(m + 4096)], [4096, 4096], 2, [d1, host], [0, 1],
                                   2, 0, s)
    out["batch"] = code(r)
    attr("last_prefetch_batch", 4, R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, m, N)
    out["batch_bad_index"] = code(cu.cuMemPrefetchBatchAsync([cu.CUdeviceptr(m)], [4096], 1, [d1], [1], 1, 0, s))
check(cu.cuStreamSynchronize(s))

# Memory freed and allocated again starts with no hints.
check(cu.cuMemFree(m))
m2 = int(check(cu.cuMemAllocManaged(N, cu.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL)))
attr("fresh_accessed_by", 8, R.CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, m2, N)
attr("fresh_last_prefetch", 4, R.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, m2, N)
host_view = np.zeros(N // 4, dtype=np.uint32)
check(cu.cuMemsetD32(m2, 7, N // 4))
check(cu.cuCtxSynchronize())
check(cu.cuMemcpyDtoH(host_view, m2, N))
require(np.all(host_view == 7), "managed memory usable")
for p in (m2, d):
    check(cu.cuMemFree(p))
check(cu.cuStreamDestroy(s))
check(cu.cuMemFreeHost(pinned))
result(**out)
