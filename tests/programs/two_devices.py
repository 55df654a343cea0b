"""Two devices: a context on each, peer access, peer copies in every form,
per-device memory accounting and pools."""
import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, require, result

E = cu.CUresult
check(cu.cuInit(0))
require(check(cu.cuDeviceGetCount()) == 2, "two devices")
d0, d1 = check(cu.cuDeviceGet(0)), check(cu.cuDeviceGet(1))
c0 = check(cu.cuDevicePrimaryCtxRetain(d0))
c1 = check(cu.cuDevicePrimaryCtxRetain(d1))

n = 1 << 18
src = (np.arange(n, dtype=np.uint32) * 2654435761).astype(np.uint32)
check(cu.cuCtxSetCurrent(c0))
a0 = check(cu.cuMemAlloc(4 * n))
check(cu.cuMemcpyHtoD(a0, src, src.nbytes))
free0_before, _ = check(cu.cuMemGetInfo())
check(cu.cuCtxSetCurrent(c1))
free1_before, _ = check(cu.cuMemGetInfo())
a1 = check(cu.cuMemAlloc(4 * n))
free1_after, _ = check(cu.cuMemGetInfo())
require(free1_before - free1_after >= 4 * n, "device 1 memory charged to device 1")
check(cu.cuCtxSetCurrent(c0))
require(check(cu.cuMemGetInfo())[0] == free0_before, "device 0 unaffected")
require(check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, a1)) == 1,
        "pointer knows its device")

# Peer access: enabled per direction, errors for repeats.
check(cu.cuCtxEnablePeerAccess(c1, 0))
expect(E.CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, cu.cuCtxEnablePeerAccess(c1, 0), "enable twice")
expect(E.CUDA_ERROR_INVALID_DEVICE, cu.cuCtxEnablePeerAccess(c0, 0), "peer access to itself")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuCtxEnablePeerAccess(c1, 1), "flags must be 0")

# Peer copies.
check(cu.cuMemcpyPeer(a1, c1, a0, c0, 4 * n))
back = np.empty_like(src)
check(cu.cuCtxSetCurrent(c1))
check(cu.cuMemcpyDtoH(back, a1, back.nbytes))
require(np.array_equal(back, src), "cuMemcpyPeer")
s1 = check(cu.cuStreamCreate(0))
check(cu.cuMemsetD32Async(a1, 0xABCD, 16, s1))
check(cu.cuMemcpyPeerAsync(a0, c0, a1, c1, 64, s1))
check(cu.cuStreamSynchronize(s1))
check(cu.cuCtxSetCurrent(c0))
check(cu.cuMemcpyDtoH(back, a0, back.nbytes))
want = src.copy()
want[:16] = 0xABCD
require(np.array_equal(back, want), "cuMemcpyPeerAsync")
check(cu.cuMemcpy(a1, a0, 4 * n))  # unified addressing: a device-to-device copy across devices
p = cu.CUDA_MEMCPY3D_PEER()
p.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
p.srcDevice = a1
p.srcContext = c1
p.srcPitch = 256
p.srcHeight = 8
p.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
p.dstDevice = int(a0) + 4 * 1024
p.dstContext = c0
p.dstPitch = 256
p.dstHeight = 8
p.WidthInBytes = 128
p.Height = 8
p.Depth = 2
check(cu.cuMemcpy3DPeer(p))
check(cu.cuMemcpyDtoH(back, a0, back.nbytes))
b8 = want.view(np.uint8).copy()
b8[4096:4096 + 256 * 16].reshape(16, 256)[:, :128] = want.view(np.uint8)[:256 * 16].reshape(16, 256)[:, :128]
require(np.array_equal(back.view(np.uint8), b8), "cuMemcpy3DPeer")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuMemcpyPeer(a1, cu.CUcontext(0x1234), a0, c0, 4), "bad peer context")

check(cu.cuCtxDisablePeerAccess(c1))
expect(E.CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, cu.cuCtxDisablePeerAccess(c1), "disable twice")

# Each device has its own default pool.
pool0 = check(cu.cuDeviceGetDefaultMemPool(d0))
pool1 = check(cu.cuDeviceGetDefaultMemPool(d1))
require(int(pool0) != int(pool1), "distinct default pools")
check(cu.cuCtxSetCurrent(c1))
x = check(cu.cuMemAllocAsync(4096, s1))
require(int(check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, x)))
        == int(pool1), "stream on device 1 allocates from device 1's pool")
check(cu.cuMemFreeAsync(x, s1))
check(cu.cuStreamSynchronize(s1))
expect(E.CUDA_ERROR_INVALID_DEVICE, cu.cuDeviceSetMemPool(d0, pool1), "pool of another device")

check(cu.cuMemFree(a1))
check(cu.cuCtxSetCurrent(c0))
check(cu.cuMemFree(a0))
result(peer=digest(back))
