"""Stream-ordered allocation and memory pools: reuse, release threshold,
trimming, attributes, explicit pools, pointer attributes."""
import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result

E = cu.CUresult
A = cu.CUmemPool_attribute
dev, ctx = init()
s = check(cu.cuStreamCreate(0))
s2 = check(cu.cuStreamCreate(0))

default = check(cu.cuDeviceGetDefaultMemPool(dev))
require(int(check(cu.cuDeviceGetMemPool(dev))) == int(default), "current pool starts as the default pool")


def attr(pool, a):
    return int(check(cu.cuMemPoolGetAttribute(pool, a)))


# Allocate, fill, free in stream order; a second allocation of the same size reuses the block.
n = 1 << 20
d1 = check(cu.cuMemAllocAsync(n, s))
check(cu.cuMemsetD8Async(d1, 0x5A, n, s))
host = np.empty(n, dtype=np.uint8)
check(cu.cuMemcpyDtoHAsync(host, d1, n, s))
require((host == 0x5A).all(), "pool memory is usable in stream order")
require(attr(default, A.CU_MEMPOOL_ATTR_USED_MEM_CURRENT) >= n, "used memory counted")
pool_of = check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d1))
require(int(pool_of) == int(default), "pointer attribute: its pool")
check(cu.cuMemFreeAsync(d1, s))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemFreeAsync(d1, s), "double stream-ordered free")
d2 = check(cu.cuMemAllocAsync(n, s))
require(int(d2) == int(d1), "same-stream reuse of a freed block")
check(cu.cuMemFreeAsync(d2, s))
check(cu.cuStreamSynchronize(s))
# Release threshold 0 (the default): synchronising gives cached memory back.
require(attr(default, A.CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 0, "threshold 0 releases on sync")
require(attr(default, A.CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH) >= n, "high-water mark kept")

# With a high threshold the pool keeps its memory across synchronisations.
thr = cu.cuuint64_t(64 << 20)
check(cu.cuMemPoolSetAttribute(default, A.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, thr))
require(attr(default, A.CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) == 64 << 20, "threshold read back")
free_before, _ = check(cu.cuMemGetInfo())
ptrs = [check(cu.cuMemAllocAsync(n, s)) for _ in range(4)]
for p in ptrs:
    check(cu.cuMemFreeAsync(p, s))
check(cu.cuStreamSynchronize(s))
reserved = attr(default, A.CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)
require(reserved == 4 * n, f"kept under the threshold: {reserved}")
require(attr(default, A.CU_MEMPOOL_ATTR_USED_MEM_CURRENT) == 0, "nothing in use")
free_kept, _ = check(cu.cuMemGetInfo())
require(free_kept == free_before - 4 * n, "cached pool memory stays charged to the device")
# Another stream may reuse blocks whose frees have completed.
d3 = check(cu.cuMemAllocAsync(n, s2))
require(int(d3) in [int(p) for p in ptrs], "cross-stream reuse after the free completed")
check(cu.cuMemFreeAsync(d3, s2))
check(cu.cuStreamSynchronize(s2))
check(cu.cuMemPoolTrimTo(default, n))
require(attr(default, A.CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) <= n, "trimmed to one block")
check(cu.cuMemPoolTrimTo(default, 0))
require(attr(default, A.CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 0, "trimmed to nothing")
check(cu.cuMemPoolSetAttribute(default, A.CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, cu.cuuint64_t(0)))
expect(E.CUDA_ERROR_INVALID_VALUE,
       cu.cuMemPoolSetAttribute(default, A.CU_MEMPOOL_ATTR_USED_MEM_HIGH, cu.cuuint64_t(5)), "high marks only reset")

# An explicit pool, made current for the device.
props = cu.CUmemPoolProps()
props.allocType = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
props.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
props.location.id = 0
pool = check(cu.cuMemPoolCreate(props))
d4 = check(cu.cuMemAllocFromPoolAsync(4096, pool, s))
require(int(check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d4)))
        == int(pool), "allocation from the explicit pool")
check(cu.cuDeviceSetMemPool(dev, pool))
d5 = check(cu.cuMemAllocAsync(4096, s))
require(int(check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, d5)))
        == int(pool), "cuMemAllocAsync uses the current pool")
vals = np.arange(1024, dtype=np.int32)
check(cu.cuMemcpyHtoDAsync(d5, vals, vals.nbytes, s))
check(cu.cuMemcpyDtoDAsync(d4, d5, vals.nbytes, s))
back = np.empty_like(vals)
check(cu.cuMemcpyDtoHAsync(back, d4, vals.nbytes, s))
require(np.array_equal(back, vals), "copies between pool allocations")
check(cu.cuMemFree(d5))  # cuMemFree works on stream-ordered memory too (synchronously)
check(cu.cuMemFreeAsync(d4, s))
check(cu.cuDeviceSetMemPool(dev, default))
loc = cu.CUmemLocation()
loc.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
loc.id = 0
flags = check(cu.cuMemPoolGetAccess(pool, loc))
require(flags == cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE, "owner device has access")
check(cu.cuMemPoolDestroy(pool))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemPoolDestroy(pool), "double destroy")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemPoolDestroy(default), "the default pool is not destroyed")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAllocAsync(0, s), "zero-byte async allocation")
expect(E.CUDA_ERROR_OUT_OF_MEMORY, cu.cuMemAllocAsync(100 << 30, s), "more than the device")
props.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_HOST
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuMemPoolCreate(props), "host pools are not supported")

check(cu.cuCtxSynchronize())
result(pool=digest(back))
