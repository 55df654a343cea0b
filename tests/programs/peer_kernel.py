"""Two devices: a kernel on device 0 may touch device 1's memory only with
peer access enabled (or, for pool memory, with pool access granted)."""
import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, load_module, nvrtc_compile, require, result

E = cu.CUresult
SOURCE = r"""
extern "C" __global__ void gather(const int* remote, int* local, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) local[i] = remote[i] + 1;
}
"""
check(cu.cuInit(0))
d0, d1 = check(cu.cuDeviceGet(0)), check(cu.cuDeviceGet(1))
c0, c1 = check(cu.cuDevicePrimaryCtxRetain(d0)), check(cu.cuDevicePrimaryCtxRetain(d1))
img = nvrtc_compile(SOURCE)
n = 2048

check(cu.cuCtxSetCurrent(c1))
remote = check(cu.cuMemAlloc(4 * n))
check(cu.cuMemcpyHtoD(remote, np.arange(n, dtype=np.int32), 4 * n))
s1 = check(cu.cuStreamCreate(0))
premote = check(cu.cuMemAllocAsync(4 * n, s1))  # pool memory of device 1
check(cu.cuMemcpyHtoDAsync(premote, np.full(n, 7, np.int32), 4 * n, s1))
check(cu.cuStreamSynchronize(s1))


def run_on_0(src):
    check(cu.cuCtxSetCurrent(c0))
    mod = load_module(img)
    f = check(cu.cuModuleGetFunction(mod, b"gather"))
    local = check(cu.cuMemAlloc(4 * n))
    vals = [np.array([int(src)], np.uint64), np.array([int(local)], np.uint64), np.array([n], np.int32)]
    ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
    check(cu.cuLaunchKernel(f, n // 256, 1, 1, 256, 1, 1, 0, 0, ptrs.ctypes.data, 0))
    rc = cu.cuCtxSynchronize()[0]
    out = np.empty(n, np.int32)
    if rc == E.CUDA_SUCCESS:
        check(cu.cuMemcpyDtoH(out, local, out.nbytes))
    return rc, out


rc, _ = run_on_0(remote)
require(rc == E.CUDA_ERROR_ILLEGAL_ADDRESS, f"peer memory without peer access: {rc}")
check(cu.cuDevicePrimaryCtxReset(d0))
check(cu.cuCtxSetCurrent(c0))
check(cu.cuCtxEnablePeerAccess(c1, 0))
rc, out = run_on_0(remote)
require(rc == E.CUDA_SUCCESS and np.array_equal(out, np.arange(n) + 1), "peer read with peer access")

# Pool memory follows the pool's access list, not context peer access.
check(cu.cuCtxDisablePeerAccess(c1))
rc, _ = run_on_0(premote)
require(rc == E.CUDA_ERROR_ILLEGAL_ADDRESS, f"pool memory without pool access: {rc}")
check(cu.cuDevicePrimaryCtxReset(d0))
pool1 = check(cu.cuDeviceGetDefaultMemPool(d1))
acc = cu.CUmemAccessDesc()
acc.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
acc.location.id = 0
acc.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
check(cu.cuMemPoolSetAccess(pool1, [acc], 1))
rc, out2 = run_on_0(premote)
require(rc == E.CUDA_SUCCESS and (out2 == 8).all(), "pool memory with pool access")
result(peer=digest(out), pool=digest(out2))
