"""The virtual memory management API: an allocation exported as a POSIX file descriptor and
imported again aliases the original.  (Apart from vmm.py: the proxy does not pass shareable
handles to the app yet — see docs/proxy.md.)"""
import os

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, init, require, result

dev, ctx = init()
POSIX_FD = cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
prop = cu.CUmemAllocationProp()
prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
prop.location.id = 0
prop.requestedHandleTypes = POSIX_FD
G = check(cu.cuMemGetAllocationGranularity(
    prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM))
access = cu.CUmemAccessDesc()
access.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
access.location.id = 0
access.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE

va = check(cu.cuMemAddressReserve(4 * G, 0, 0, 0))
a, c = int(va), int(va) + 2 * G
h = check(cu.cuMemCreate(2 * G, prop, 0))
check(cu.cuMemMap(a, 2 * G, 0, h, 0))
check(cu.cuMemSetAccess(a, 2 * G, [access], 1))
data = np.arange(G // 4, dtype=np.uint32)
check(cu.cuMemcpyHtoD(a + 4096, data, data.nbytes))

fd = check(cu.cuMemExportToShareableHandle(h, POSIX_FD, 0))
require(fd >= 0, "exported fd")
h3 = check(cu.cuMemImportFromShareableHandle(fd, POSIX_FD))
os.close(fd)
check(cu.cuMemMap(c, 2 * G, 0, h3, 0))
check(cu.cuMemSetAccess(c, 2 * G, [access], 1))
back3 = np.empty_like(data)
check(cu.cuMemcpyDtoH(back3, c + 4096, data.nbytes))
require(np.array_equal(back3, data), "imported allocation aliases the original")
for ptr in (a, c):
    check(cu.cuMemUnmap(ptr, 2 * G))
check(cu.cuMemRelease(h3))
check(cu.cuMemRelease(h))
check(cu.cuMemAddressFree(va, 4 * G))
result(alias=digest(back3))
