"""A job to checkpoint, restore and migrate (tests/test_checkpoint.py): every kind of device state
the proxy records is live while it runs — a module and its kernel, two streams ordered by an
event, cuMemAlloc memory, a stream-ordered pool allocation, a VMM allocation mapped by the app,
pinned (mapped) host memory a kernel writes — and every step prints a digest of all of it, so a
run that was checkpointed, restored or migrated any number of times prints exactly the lines of
an uninterrupted one.

    ckpt_job.py STEPS [PAUSE_S]
"""
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
"""
steps = int(sys.argv[1])
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
dev, ctx = init()
mod = load_module(nvrtc_compile(SOURCE))
mix = check(cu.cuModuleGetFunction(mod, b"mix"))
N = 1 << 16
s1 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
s2 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
ev = check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING))

a = check(cu.cuMemAlloc(4 * N))                      # plain device memory
b = check(cu.cuMemAllocAsync(4 * N, s2))             # stream-ordered pool memory
host = check(cu.cuMemHostAlloc(4 * 256, cu.CU_MEMHOSTALLOC_DEVICEMAP))  # pinned, mapped
host_view = np.frombuffer((np.ctypeslib.as_ctypes_type(np.uint32) * 256).from_address(int(host)), np.uint32)
dhost = check(cu.cuMemHostGetDevicePointer(host, 0))

prop = cu.CUmemAllocationProp()                      # the app's own VMM allocation
prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
prop.location.id = 0
G = check(cu.cuMemGetAllocationGranularity(prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM))
va = check(cu.cuMemAddressReserve(G, 0, 0, 0))
handle = check(cu.cuMemCreate(G, prop, 0))
check(cu.cuMemMap(va, G, 0, handle, 0))
access = cu.CUmemAccessDesc()
access.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
access.location.id = 0
access.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
check(cu.cuMemSetAccess(va, G, [access], 1))

seed = (np.arange(N, dtype=np.uint64) * 2654435761 % (1 << 32)).astype(np.uint32)
check(cu.cuMemcpyHtoD(a, seed, 4 * N))
check(cu.cuMemsetD32Async(b, 7, N, s2))
check(cu.cuEventRecord(ev, s2))
check(cu.cuStreamWaitEvent(s1, ev, 0))

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
    check(cu.cuMemcpyDtoHAsync(out, b, 4 * N, s1))
    check(cu.cuStreamSynchronize(s1))
    check(cu.cuMemcpyDtoH(vmm_out, va, 4 * N))
    print(f"step {k} {digest(out, vmm_out, host_view.copy())}", flush=True)
    time.sleep(pause)
print("done", flush=True)
