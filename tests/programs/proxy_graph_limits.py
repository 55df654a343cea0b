"""What the proxy does differently from a driver with graphs, on purpose
(docs/proxy-graphs.md): run through the proxy only, by test_proxy_graphs.py.
Prints one JSON line of observations."""
import json
import os

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, init

dev, ctx = init()
s = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
d = check(cu.cuMemAlloc(1 << 16))
out = {}


def name(r):
    err = r[0] if isinstance(r, tuple) else r
    return err.name


g = check(cu.cuGraphCreate(0))
# A memcpy node on the app's pageable memory: unreachable when the graph runs.
page = np.zeros(1024, np.uint8)
cp = cu.CUDA_MEMCPY3D()
cp.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_HOST
cp.srcHost = page.ctypes.data
cp.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp.dstDevice = d
cp.WidthInBytes, cp.Height, cp.Depth = 1024, 1, 1
out["pageable_memcpy_node"] = name(cu.cuGraphAddMemcpyNode(g, None, 0, cp, ctx))
# The same from pinned memory is fine.
pinned = check(cu.cuMemAllocHost(1024))
cp.srcHost = pinned
out["pinned_memcpy_node"] = name(cu.cuGraphAddMemcpyNode(g, None, 0, cp, ctx))
# Device addresses outside the app's allocations.
ms = cu.CUDA_MEMSET_NODE_PARAMS()
ms.dst, ms.value, ms.elementSize, ms.width, ms.height = int(d) + (1 << 16), 0, 1, 64, 1
out["memset_past_allocation"] = name(cu.cuGraphAddMemsetNode(g, None, 0, ms, ctx))
ms.dst = int(d)
ms.width = (1 << 16) + 1
out["memset_overrunning"] = name(cu.cuGraphAddMemsetNode(g, None, 0, ms, ctx))
# A pageable async copy on a capturing stream cannot be captured.
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED))
host = np.ones(1 << 12, np.uint8)
out["captured_pageable_copy"] = name(cu.cuMemcpyHtoDAsync(d, host, host.nbytes, s))
cu.cuStreamEndCapture(s)
# Graph memory lives in the job's address range, like every other allocation.
ap = cu.CUDA_MEM_ALLOC_NODE_PARAMS()
ap.poolProps.allocType = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
ap.poolProps.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
ap.poolProps.location.id = 0
ap.bytesize = 1 << 20
gm = check(cu.cuGraphCreate(0))
check(cu.cuGraphAddMemAllocNode(gm, None, 0, ap))
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED))
captured_ptr = check(cu.cuMemAllocAsync(4096, s))
check(cu.cuMemFreeAsync(captured_ptr, s))
gc = check(cu.cuStreamEndCapture(s))
out["alloc_node_ptr"] = int(ap.dptr)
out["captured_alloc_ptr"] = int(captured_ptr)
out["device_ptr"] = int(d)
out["va_base"] = int(os.environ.get("SINGULARITY_VA_BASE", str(0x400000000000)), 0)
out["va_size"] = int(os.environ.get("SINGULARITY_VA_SIZE", str(1 << 40)), 0)
out["free_graph_memory"] = name(cu.cuMemFree(ap.dptr))
for h in (g, gm, gc):
    check(cu.cuGraphDestroy(h))
print(json.dumps(out), flush=True)
