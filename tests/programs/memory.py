"""Device, pinned, registered and managed memory; every copy and memset
form; pointer attributes; the errors a driver gives for misuse."""
import ctypes

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result

E = cu.CUresult
P = cu.CUpointer_attribute
dev, ctx = init()
rng = np.random.default_rng(1234)

# --- cuMemAlloc: alignment, info, ranges ------------------------------------------------------
free0, total = check(cu.cuMemGetInfo())
require(total == 80 << 30, f"default 80G device, got {total}")
ptrs = [check(cu.cuMemAlloc(n)) for n in (1, 100, 4096, 3 << 20)]
for p in ptrs:
    require(int(p) % 256 == 0, "256-byte alignment at least")
free1, _ = check(cu.cuMemGetInfo())
require(free1 < free0, "allocations reduce free memory")
base, size = check(cu.cuMemGetAddressRange(int(ptrs[1]) + 10))
require(int(base) == int(ptrs[1]) and size == 100, "address range of an interior pointer")
expect(E.CUDA_ERROR_NOT_FOUND, cu.cuMemGetAddressRange(0x10), "unknown address")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAlloc(0), "zero-byte allocation")
expect(E.CUDA_ERROR_OUT_OF_MEMORY, cu.cuMemAlloc(81 << 30), "more than the device has")
for p in ptrs:
    check(cu.cuMemFree(p))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemFree(ptrs[0]), "double free")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemFree(0xDEAD0000), "free of a random pointer")
check(cu.cuMemFree(0))  # free(NULL) semantics
free2, _ = check(cu.cuMemGetInfo())
require(free2 == free0, "all memory back")

# --- 1D copies ---------------------------------------------------------------------------------
n = 1 << 16
a = rng.standard_normal(n).astype(np.float32)
d_a = check(cu.cuMemAlloc(a.nbytes))
d_b = check(cu.cuMemAlloc(a.nbytes))
check(cu.cuMemcpyHtoD(d_a, a, a.nbytes))
check(cu.cuMemcpyDtoD(d_b, d_a, a.nbytes))
b = np.empty_like(a)
check(cu.cuMemcpyDtoH(b, d_b, a.nbytes))
require(np.array_equal(a, b), "HtoD / DtoD / DtoH round trip")
c = np.empty_like(a)
check(cu.cuMemcpy(c.ctypes.data, d_a, a.nbytes))  # unified: kinds from the addresses
require(np.array_equal(a, c), "cuMemcpy DtoH by address")
big = np.arange(a.size + 4, dtype=np.float32)  # pageable, one element past d_a
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyHtoD(d_a, big, big.nbytes), "copy past the allocation end")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyHtoDAsync(d_a, big, big.nbytes, 0), "async copy past the end")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyDtoH(big, d_a, big.nbytes), "copy from past the allocation end")
check(cu.cuCtxSynchronize())
check(cu.cuMemcpyDtoH(b, d_a, a.nbytes))
require(np.array_equal(a, b), "a refused copy leaves its destination alone")
check(cu.cuMemcpyDtoH(c, d_b, a.nbytes))
require(np.array_equal(a, c), "a refused copy leaves the next allocation alone")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyDtoH(b, 0x1000, 16), "copy from a non-device address")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyDtoD(int(d_b) + 8, d_a, a.nbytes), "DtoD overrun")

# --- memsets ---------------------------------------------------------------------------------
check(cu.cuMemsetD8(d_a, 0xAB, 1000))
check(cu.cuMemsetD16(int(d_a) + 1000, 0x1234, 500))
check(cu.cuMemsetD32(int(d_a) + 2000, 0xDEADBEEF, 100))
check(cu.cuMemcpyDtoH(b, d_a, a.nbytes))
raw = b.view(np.uint8)
require((raw[:1000] == 0xAB).all(), "memset D8")
require((raw[1000:2000].view(np.uint16) == 0x1234).all(), "memset D16")
require((raw[2000:2400].view(np.uint32) == 0xDEADBEEF).all(), "memset D32")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemsetD32(int(d_a) + 2, 0, 4), "misaligned D32 memset")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemsetD8(d_a, 0, a.nbytes + 1), "memset overrun")

# --- pitched 2D ------------------------------------------------------------------------------
W, H = 300, 37  # bytes per row, rows
d_p, pitch = check(cu.cuMemAllocPitch(W, H, 4))
require(pitch >= W and pitch % 512 == 0, f"pitch {pitch}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAllocPitch(W, H, 3), "element size must be 4, 8 or 16")
host2d = rng.integers(0, 255, size=(H, W), dtype=np.uint8)
cp = cu.CUDA_MEMCPY2D()
cp.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_HOST
cp.srcHost = host2d.ctypes.data
cp.srcPitch = W
cp.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp.dstDevice = d_p
cp.dstPitch = pitch
cp.WidthInBytes = W
cp.Height = H
check(cu.cuMemcpy2D(cp))
check(cu.cuMemsetD2D8(int(d_p) + 10, pitch, 0x7F, 20, 5))  # a 20x5 patch
back = np.zeros((H, W), dtype=np.uint8)
cp2 = cu.CUDA_MEMCPY2D()
cp2.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp2.srcDevice = d_p
cp2.srcPitch = pitch
cp2.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_HOST
cp2.dstHost = back.ctypes.data
cp2.dstPitch = W
cp2.WidthInBytes = W
cp2.Height = H
check(cu.cuMemcpy2D(cp2))
want = host2d.copy()
want[:5, 10:30] = 0x7F
require(np.array_equal(back, want), "2D copy + 2D memset")
cp2.dstPitch = W - 1
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpy2D(cp2), "pitch below width")
cp2.dstPitch = W
cp2.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_ARRAY
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuMemcpy2D(cp2), "CUDA arrays are not simulated")

# --- 3D: a sub-box between two pitched volumes ------------------------------------------------
X, Y, Z = 64, 16, 8  # bytes, rows, slices
vol = rng.integers(0, 255, size=(Z, Y, X), dtype=np.uint8)
d_vol = check(cu.cuMemAlloc(vol.nbytes))
check(cu.cuMemcpyHtoD(d_vol, vol, vol.nbytes))
d_out = check(cu.cuMemAlloc(vol.nbytes))
check(cu.cuMemsetD8(d_out, 0, vol.nbytes))
c3 = cu.CUDA_MEMCPY3D()
c3.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
c3.srcDevice = d_vol
c3.srcPitch = X
c3.srcHeight = Y
c3.srcXInBytes, c3.srcY, c3.srcZ = 8, 2, 1
c3.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_UNIFIED
c3.dstDevice = d_out
c3.dstPitch = X
c3.dstHeight = Y
c3.dstXInBytes, c3.dstY, c3.dstZ = 0, 0, 0
c3.WidthInBytes, c3.Height, c3.Depth = 32, 10, 6
check(cu.cuMemcpy3D(c3))
out = np.empty_like(vol)
check(cu.cuMemcpyDtoH(out, d_out, out.nbytes))
want = np.zeros_like(vol)
want[0:6, 0:10, 0:32] = vol[1:7, 2:12, 8:40]
require(np.array_equal(out, want), "3D sub-box copy")
c3.Depth = 9
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpy3D(c3), "3D copy past the volume")

# --- pinned host memory: mapped, flags, device pointer == host pointer ------------------------
hp = check(cu.cuMemHostAlloc(4096, cu.CU_MEMHOSTALLOC_DEVICEMAP | cu.CU_MEMHOSTALLOC_PORTABLE))
require(int(check(cu.cuMemHostGetDevicePointer(hp, 0))) == int(hp), "UVA: device pointer is the host pointer")
fl = check(cu.cuMemHostGetFlags(hp))
require(fl & cu.CU_MEMHOSTALLOC_DEVICEMAP and fl & cu.CU_MEMHOSTALLOC_PORTABLE, f"host flags {fl}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemHostAlloc(64, 0x80), "unknown host-alloc flag")
hbuf = (ctypes.c_uint32 * 1024).from_address(int(hp))
check(cu.cuMemsetD32(hp, 0x01020304, 1024))  # pinned memory is device-addressable
require(all(v == 0x01020304 for v in hbuf), "memset into pinned memory")
require(check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_MEMORY_TYPE, hp)) == cu.CUmemorytype.CU_MEMORYTYPE_HOST,
        "pinned memory type")
hp2 = check(cu.cuMemAllocHost(256))
check(cu.cuMemFreeHost(hp2))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemFreeHost(hp2), "double cuMemFreeHost")
check(cu.cuMemFreeHost(0))

# --- registered host memory --------------------------------------------------------------------
reg = np.arange(8192, dtype=np.int32)
check(cu.cuMemHostRegister(reg.ctypes.data, reg.nbytes, cu.CU_MEMHOSTREGISTER_DEVICEMAP))
expect(E.CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED,
       cu.cuMemHostRegister(reg.ctypes.data + 64, 128, 0), "overlapping registration")
require(int(check(cu.cuMemHostGetDevicePointer(reg.ctypes.data, 0))) == reg.ctypes.data, "registered device pointer")
check(cu.cuMemcpyDtoD(d_a, reg.ctypes.data, reg.nbytes))  # a device-side copy out of registered memory
got = np.empty_like(reg)
check(cu.cuMemcpyDtoH(got, d_a, reg.nbytes))
require(np.array_equal(got, reg), "registered memory read as device memory")
check(cu.cuMemHostUnregister(reg.ctypes.data))
expect(E.CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cu.cuMemHostUnregister(reg.ctypes.data), "double unregister")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemHostUnregister(0), "unregister NULL")

# --- managed memory ---------------------------------------------------------------------------
m = check(cu.cuMemAllocManaged(4 * 1024, cu.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL))
mview = (ctypes.c_float * 1024).from_address(int(m))
for i in range(1024):
    mview[i] = i * 0.5  # the host writes managed memory directly
check(cu.cuMemcpyDtoH(b[:1024], m, 4096))
require(np.array_equal(b[:1024], np.arange(1024, dtype=np.float32) * 0.5), "managed memory read as device memory")
require(check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_IS_MANAGED, m)) is True, "is managed")
check(cu.cuMemFree(m))

# --- pointer attributes of device memory --------------------------------------------------------
require(check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d_a)) == cu.CUmemorytype.CU_MEMORYTYPE_DEVICE,
        "device memory type")
require(check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, d_a)) == 0, "ordinal")
start = check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, int(d_a) + 100))
require(int(start) == int(d_a), "range start")
require(check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_RANGE_SIZE, d_a)) == a.nbytes, "range size")
bid_a = check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_BUFFER_ID, d_a))
bid_b = check(cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_BUFFER_ID, d_b))
require(bid_a != bid_b, "buffer ids differ")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_HOST_POINTER, d_a),
       "device memory has no host pointer")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuPointerGetAttribute(P.CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a.ctypes.data),
       "pageable memory is unknown")
attrs = [P.CU_POINTER_ATTRIBUTE_MEMORY_TYPE, P.CU_POINTER_ATTRIBUTE_IS_MANAGED, P.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL]
vals = check(cu.cuPointerGetAttributes(len(attrs), attrs, a.ctypes.data))
require(vals[0] == 0 and vals[1] is False, f"plural form answers for pageable memory: {vals}")

# --- batched copies -----------------------------------------------------------------------------
bs = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
parts = [np.full(256, k, np.uint32) for k in range(4)]
dst = check(cu.cuMemAlloc(4 * 256 * 4))
attr = cu.CUmemcpyAttributes()
attr.srcAccessOrder = cu.CUmemcpySrcAccessOrder.CU_MEMCPY_SRC_ACCESS_ORDER_STREAM
check(cu.cuMemcpyBatchAsync([cu.CUdeviceptr(int(dst) + 1024 * k) for k in range(4)],
                            [cu.CUdeviceptr(p.ctypes.data) for p in parts],
                            [1024] * 4, 4, [attr], [0], 1, bs))
gathered = np.empty(1024, np.uint32)
check(cu.cuMemcpyDtoHAsync(gathered, dst, gathered.nbytes, bs))
require(np.array_equal(gathered, np.repeat(np.arange(4, dtype=np.uint32), 256)), "cuMemcpyBatchAsync")
expect(E.CUDA_ERROR_INVALID_VALUE,
       cu.cuMemcpyBatchAsync([dst], [cu.CUdeviceptr(parts[0].ctypes.data)], [1024], 1, [attr], [0], 1, 0),
       "batches are not for the legacy stream")

check(cu.cuMemsetD32(d_b, 0, n))
check(cu.cuCtxSynchronize())
result(copy=digest(a, out, back), pitch=int(pitch))
