"""Managed memory hints: advice, prefetch and the range attributes that report them.
(Kept apart from memory.py: the proxy does not forward these yet — see docs/proxy.md.)"""
import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result

E = cu.CUresult
dev, ctx = init()
d_a = check(cu.cuMemAlloc(256))
m = check(cu.cuMemAllocManaged(4 * 1024, cu.CUmemAttach_flags.CU_MEM_ATTACH_GLOBAL))
loc = cu.CUmemLocation()
loc.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
loc.id = 0
check(cu.cuMemAdvise(m, 4096, cu.CUmem_advise.CU_MEM_ADVISE_SET_READ_MOSTLY, loc))
check(cu.cuMemAdvise(m, 4096, cu.CUmem_advise.CU_MEM_ADVISE_SET_PREFERRED_LOCATION, loc))
check(cu.cuMemPrefetchAsync(m, 4096, loc, 0, 0))
rm = check(cu.cuMemRangeGetAttribute(4, cu.CUmem_range_attribute.CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, m, 4096))
require(rm == 1, f"read-mostly range attribute {rm}")
pl = check(cu.cuMemRangeGetAttribute(4, cu.CUmem_range_attribute.CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION, m, 4096))
require(pl == 0, f"preferred location {pl}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAdvise(d_a, 64, cu.CUmem_advise.CU_MEM_ADVISE_SET_READ_MOSTLY, loc),
       "advice on non-managed memory")
host = np.empty(1024, dtype=np.float32)
check(cu.cuMemsetD32(m, 0x3F800000, 1024))
check(cu.cuCtxSynchronize())
check(cu.cuMemcpyDtoH(host, m, 4096))
require(np.all(host == 1.0), "managed memory usable after advice and prefetch")
check(cu.cuMemFree(m))
check(cu.cuMemFree(d_a))
result(read_mostly=int(rm), preferred=int(pl), data=digest(host))
