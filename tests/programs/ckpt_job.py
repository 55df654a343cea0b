"""A job to checkpoint, restore and migrate (tests/test_checkpoint.py): every kind of device state
the proxy records is live while it runs — a module and its kernel, two streams ordered by an
event, cuMemAlloc memory, a stream-ordered pool allocation, a VMM allocation mapped by the app (its handle released at once),
pinned (mapped) host memory a kernel writes, the app's own memory registered with cuMemHostRegister
that a kernel reads and writes, a CUDA graph (kernel, memcpy and memset nodes) instantiated
once and launched every step, whose graph was changed after instantiation — and every step prints a digest of all of it, so a
run that was checkpointed, restored or migrated any number of times prints exactly the lines of
an uninterrupted one.

    ckpt_job.py STEPS [PAUSE_S] [--update-exec] [--share-vmm] [--managed-hints]

--update-exec: the executable is also updated in place (same parameters, so the same output),
which checkpoint images do not record yet: a checkpoint must refuse.
--share-vmm: the VMM allocation is exported as a POSIX file descriptor (same output); memory other
processes may hold cannot be checkpointed: a checkpoint must refuse.
--managed-hints: a managed allocation whose advice and prefetch location change every step, and
every step line ends with its range attributes: a restored job must answer them as before.
"""
import os
import sys
import time

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, init, load_module, nvrtc_compile

SOURCE = r"""
extern "C" __global__ void mix(unsigned* a, const unsigned* b, unsigned* host, int n, unsigned k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned v = a[i] * 1664525u + b[i] + k;
    for (int r = 0; r < 64; ++r) v = v * 2654435761u + (v >> 13);  // some work per thread
    a[i] = v;
    if (i < 256) host[i] = v;  // mapped host memory, written by the device
  }
}
extern "C" __global__ void stir(unsigned* r, const unsigned* a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) r[i] = (r[i] ^ a[i]) * 2246822519u + 1u;  // registered host memory, read and written
}
extern "C" __global__ void bump(unsigned* g, const unsigned* a, int n, unsigned k) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) g[i] = g[i] * 31u + a[i] + k;
}
"""
steps = int(sys.argv[1])
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
dev, ctx = init()
mod = load_module(nvrtc_compile(SOURCE))
mix = check(cu.cuModuleGetFunction(mod, b"mix"))
bump = check(cu.cuModuleGetFunction(mod, b"bump"))
stir = check(cu.cuModuleGetFunction(mod, b"stir"))
N = 1 << 16
s1 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
s2 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
ev = check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING))

a = check(cu.cuMemAlloc(4 * N))                      # plain device memory
b = check(cu.cuMemAllocAsync(4 * N, s2))             # stream-ordered pool memory
host = check(cu.cuMemHostAlloc(4 * 256, cu.CU_MEMHOSTALLOC_DEVICEMAP))  # pinned, mapped
host_view = np.frombuffer((np.ctypeslib.as_ctypes_type(np.uint32) * 256).from_address(int(host)), np.uint32)
dhost = check(cu.cuMemHostGetDevicePointer(host, 0))

R_N = 3000                                           # the app's own memory, registered (not page-aligned)
reg_store = np.arange(R_N + 1000, dtype=np.uint32)
reg = reg_store[500:500 + R_N]
check(cu.cuMemHostRegister(reg.ctypes.data, reg.nbytes, cu.CU_MEMHOSTREGISTER_DEVICEMAP))
dreg = check(cu.cuMemHostGetDevicePointer(reg.ctypes.data, 0))

prop = cu.CUmemAllocationProp()                      # the app's own VMM allocation
prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
prop.location.id = 0
POSIX_FD = cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
if "--share-vmm" in sys.argv:
    prop.requestedHandleTypes = POSIX_FD
G = check(cu.cuMemGetAllocationGranularity(prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM))
va = check(cu.cuMemAddressReserve(G, 0, 0, 0))
handle = check(cu.cuMemCreate(G, prop, 0))
if "--share-vmm" in sys.argv:
    os.close(check(cu.cuMemExportToShareableHandle(handle, POSIX_FD, 0)))
check(cu.cuMemMap(va, G, 0, handle, 0))
access = cu.CUmemAccessDesc()
access.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
access.location.id = 0
access.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
check(cu.cuMemSetAccess(va, G, [access], 1))
check(cu.cuMemRelease(handle))  # as many apps do: the mapping keeps the memory alive

seed = (np.arange(N, dtype=np.uint64) * 2654435761 % (1 << 32)).astype(np.uint32)
check(cu.cuMemcpyHtoD(a, seed, 4 * N))
check(cu.cuMemsetD32Async(b, 7, N, s2))
check(cu.cuEventRecord(ev, s2))
check(cu.cuStreamWaitEvent(s1, ev, 0))

# The graph: memset(tail) ; bump(g, a, k=3) -> memcpy(g -> gcopy).  Launched every step on s1.
G_N = 4096
g_buf, g_copy, g_tail = (check(cu.cuMemAlloc(4 * G_N)) for _ in range(3))
check(cu.cuMemsetD32(g_buf, 1, G_N))
graph = check(cu.cuGraphCreate(0))
bump_args = [np.array([int(g_buf)], np.uint64), np.array([int(a)], np.uint64), np.array([G_N], np.int32),
             np.array([3], np.uint32)]
bump_ptrs = np.array([x.ctypes.data for x in bump_args], np.uint64)
kp = cu.CUDA_KERNEL_NODE_PARAMS()
kp.func = bump
kp.gridDimX, kp.gridDimY, kp.gridDimZ = G_N // 256, 1, 1
kp.blockDimX, kp.blockDimY, kp.blockDimZ = 256, 1, 1
kp.sharedMemBytes = 0
kp.kernelParams = bump_ptrs.ctypes.data
k_node = check(cu.cuGraphAddKernelNode(graph, None, 0, kp))
cp = cu.CUDA_MEMCPY3D()
cp.srcMemoryType = cp.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp.srcDevice, cp.dstDevice = g_buf, g_copy
cp.WidthInBytes, cp.Height, cp.Depth = 4 * G_N, 1, 1
check(cu.cuGraphAddMemcpyNode(graph, [k_node], 1, cp, ctx))
ms = cu.CUDA_MEMSET_NODE_PARAMS()
ms.dst, ms.value, ms.elementSize, ms.width, ms.height, ms.pitch = g_tail, 0x5EED, 4, G_N, 1, 0
check(cu.cuGraphAddMemsetNode(graph, None, 0, ms, ctx))
graph_exec = check(cu.cuGraphInstantiate(graph, 0))
if "--update-exec" in sys.argv:
    check(cu.cuGraphExecKernelNodeSetParams(graph_exec, k_node, kp))
# The graph changes after instantiation; the executable keeps k=3 (a restore must not take the graph's k=7).
bump_args[3][0] = 7
check(cu.cuGraphKernelNodeSetParams(k_node, kp))
# s1 and s2 are non-blocking streams: they do not wait for the legacy stream, where the cuMemsetD32 of
# g_buf may still be running (asynchronous to the host on device memory).  Without this the first step
# raced it (seen as a step-0 digest differing from the uninterrupted run's, now and then, under load).
check(cu.cuCtxSynchronize())
g_out = np.empty(G_N, np.uint32)
tail_out = np.empty(G_N, np.uint32)

HINTS = "--managed-hints" in sys.argv
if HINTS:
    ADV, RANGE = cu.CUmem_advise, cu.CUmem_range_attribute
    managed = check(cu.cuMemAllocManaged(1 << 16, cu.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL))
    # Device 0 and the host only: a restore may put the job on a machine with one device.
    device_loc, host_loc = cu.CUmemLocation(), cu.CUmemLocation()
    device_loc.type, device_loc.id = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE, 0
    host_loc.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_HOST
    check(cu.cuMemAdvise(managed, 1 << 16, ADV.CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host_loc))
    check(cu.cuMemAdvise(managed, 1 << 16, ADV.CU_MEM_ADVISE_SET_ACCESSED_BY, device_loc))
    check(cu.cuMemAdvise(managed, 1 << 16, ADV.CU_MEM_ADVISE_SET_ACCESSED_BY, host_loc))


def managed_hints(k):
    """Changes the advice and prefetches for step k; the range attributes as they are then."""
    read_mostly = ADV.CU_MEM_ADVISE_SET_READ_MOSTLY if k % 2 else ADV.CU_MEM_ADVISE_UNSET_READ_MOSTLY
    check(cu.cuMemAdvise(managed, 1 << 16, read_mostly, device_loc))
    check(cu.cuMemPrefetchAsync(managed, 1 << 16, device_loc if k % 3 else host_loc, 0, s2))
    return [check(cu.cuMemRangeGetAttribute(4, a, managed, 1 << 16))
            for a in (RANGE.CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, RANGE.CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION,
                      RANGE.CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION)] + \
        [list(check(cu.cuMemRangeGetAttribute(12, RANGE.CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY, managed, 1 << 16)))]


out = np.empty(N, np.uint32)
vmm_out = np.empty(N, np.uint32)
for k in range(steps):
    args = [np.array([int(a)], np.uint64), np.array([int(b)], np.uint64), np.array([int(dhost)], np.uint64),
            np.array([N], np.int32), np.array([k], np.uint32)]
    ptrs = np.array([x.ctypes.data for x in args], np.uint64)
    check(cu.cuLaunchKernel(mix, N // 256, 1, 1, 256, 1, 1, 0, s1, ptrs.ctypes.data, 0))
    check(cu.cuMemcpyDtoDAsync(va, a, 4 * N, s1))          # the VMM range follows a
    check(cu.cuEventRecord(ev, s1))
    check(cu.cuStreamWaitEvent(s2, ev, 0))
    check(cu.cuMemcpyDtoDAsync(b, va, 4 * N, s2))          # and b follows it, on the other stream
    check(cu.cuEventRecord(ev, s2))
    check(cu.cuStreamWaitEvent(s1, ev, 0))
    check(cu.cuGraphLaunch(graph_exec, s1))                 # reads a, after this step's mix
    rargs = [np.array([int(dreg)], np.uint64), np.array([int(a)], np.uint64), np.array([R_N], np.int32)]
    rptrs = np.array([x.ctypes.data for x in rargs], np.uint64)
    check(cu.cuLaunchKernel(stir, (R_N + 255) // 256, 1, 1, 256, 1, 1, 0, s1, rptrs.ctypes.data, 0))
    check(cu.cuMemcpyDtoHAsync(out, b, 4 * N, s1))
    check(cu.cuStreamSynchronize(s1))
    check(cu.cuMemcpyDtoH(vmm_out, va, 4 * N))
    check(cu.cuMemcpyDtoH(g_out, g_copy, 4 * G_N))
    check(cu.cuMemcpyDtoH(tail_out, g_tail, 4 * G_N))
    hints = f" hints {managed_hints(k)}" if HINTS else ""
    parts = (out, vmm_out, host_view.copy(), g_out, tail_out, reg_store)
    # The whole state's digest, then one short digest per part: a line that differs says which part did.
    each = ".".join(digest(p)[:4] for p in parts)
    # One write per line: print() writes the text and its newline apart when stdout is unbuffered
    # (PYTHONUNBUFFERED), and an image taken between the two restores an app whose next output
    # lands after whatever else was written to the file meanwhile ("restored ..." by the CLI).
    sys.stdout.write(f"step {k} {digest(*parts)} {each}{hints}\n")
    sys.stdout.flush()
    time.sleep(pause)
print("done", flush=True)
