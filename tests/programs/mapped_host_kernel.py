"""Kernels dereferencing host memory: mapped pinned memory through its
device pointer, registered memory, managed memory; VMM memory only after
cuMemSetAccess."""
import ctypes

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, load_module, nvrtc_compile, require, result

E = cu.CUresult
SOURCE = r"""
extern "C" __global__ void square_into(const int* in, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * in[i];
}
"""
dev, ctx = init()
mod = load_module(nvrtc_compile(SOURCE))
f = check(cu.cuModuleGetFunction(mod, b"square_into"))


def run(src, dst, n, stream=0):
    vals = [np.array([int(src)], np.uint64), np.array([int(dst)], np.uint64), np.array([n], np.int32)]
    ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
    check(cu.cuLaunchKernel(f, (n + 127) // 128, 1, 1, 128, 1, 1, 0, stream, ptrs.ctypes.data, 0))


n = 5000
# Mapped pinned memory in both directions: the kernel reads and writes host memory directly.
hin = check(cu.cuMemHostAlloc(4 * n, cu.CU_MEMHOSTALLOC_DEVICEMAP))
hout = check(cu.cuMemHostAlloc(4 * n, cu.CU_MEMHOSTALLOC_DEVICEMAP | cu.CU_MEMHOSTALLOC_WRITECOMBINED))
a_in = np.frombuffer((ctypes.c_int32 * n).from_address(int(hin)), np.int32)
a_out = np.frombuffer((ctypes.c_int32 * n).from_address(int(hout)), np.int32)
a_in[:] = np.arange(n) - 2500
din = check(cu.cuMemHostGetDevicePointer(hin, 0))
dout = check(cu.cuMemHostGetDevicePointer(hout, 0))
run(din, dout, n)
check(cu.cuCtxSynchronize())
require(np.array_equal(a_out, a_in * a_in), "zero-copy through mapped pinned memory")
mapped = digest(a_out)

# Registered memory: numpy arrays the kernel works on in place.
src = np.arange(n, dtype=np.int32) % 100
dst = np.zeros(n, np.int32)
check(cu.cuMemHostRegister(src.ctypes.data, src.nbytes, cu.CU_MEMHOSTREGISTER_DEVICEMAP))
check(cu.cuMemHostRegister(dst.ctypes.data, dst.nbytes, cu.CU_MEMHOSTREGISTER_DEVICEMAP))
run(check(cu.cuMemHostGetDevicePointer(src.ctypes.data, 0)), check(cu.cuMemHostGetDevicePointer(dst.ctypes.data, 0)), n)
check(cu.cuCtxSynchronize())
require(np.array_equal(dst, src * src), "kernel on registered host memory")
check(cu.cuMemHostUnregister(src.ctypes.data))
check(cu.cuMemHostUnregister(dst.ctypes.data))

# Managed memory, written by the host, squared by the device, read by the host.
m = check(cu.cuMemAllocManaged(4 * n, cu.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL))
mv = np.frombuffer((ctypes.c_int32 * n).from_address(int(m)), np.int32)
mv[:] = 3
run(m, m, n)
check(cu.cuCtxSynchronize())
require((mv == 9).all(), "managed memory in place")

# VMM memory is visible to kernels only once access is granted.
prop = cu.CUmemAllocationProp()
prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
prop.location.id = 0
G = 2 << 20
h = check(cu.cuMemCreate(G, prop, 0))
va = check(cu.cuMemAddressReserve(G, 0, 0, 0))
check(cu.cuMemMap(va, G, 0, h, 0))
run(din, va, n)
expect(E.CUDA_ERROR_ILLEGAL_ADDRESS, cu.cuCtxSynchronize(), "VMM mapping without access is illegal to a kernel")
check(cu.cuDevicePrimaryCtxReset(dev))
mod = load_module(nvrtc_compile(SOURCE))
f = check(cu.cuModuleGetFunction(mod, b"square_into"))
hin = check(cu.cuMemHostAlloc(4 * n, cu.CU_MEMHOSTALLOC_DEVICEMAP))  # the reset freed the old one
a_in = np.frombuffer((ctypes.c_int32 * n).from_address(int(hin)), np.int32)
a_in[:] = 12
acc = cu.CUmemAccessDesc()
acc.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
acc.location.id = 0
acc.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
check(cu.cuMemSetAccess(va, G, [acc], 1))
run(hin, va, n)
back = np.empty(n, np.int32)
check(cu.cuMemcpyDtoH(back, va, back.nbytes))
require((back == 144).all(), "kernel into VMM memory after cuMemSetAccess")
check(cu.cuMemUnmap(va, G))
check(cu.cuMemRelease(h))
check(cu.cuMemAddressFree(va, G))
result(mapped=mapped, vmm=digest(back))
