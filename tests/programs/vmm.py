"""The virtual memory management API: reservations at fixed addresses,
physical allocations, aliasing mappings, access control, sharing through a
POSIX file descriptor."""
import os

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result

E = cu.CUresult
dev, ctx = init()

prop = cu.CUmemAllocationProp()
prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
prop.location.id = 0
prop.requestedHandleTypes = cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
G = check(cu.cuMemGetAllocationGranularity(prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM))
require(G == 2 << 20, f"2 MiB granularity, got {G}")
access = cu.CUmemAccessDesc()
access.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
access.location.id = 0
access.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE

# A reservation asked for at a given address gets exactly that address when it is free.
va = check(cu.cuMemAddressReserve(8 * G, 0, 0, 0))
require(int(va) % G == 0, "granule-aligned reservation")
check(cu.cuMemAddressFree(va, 8 * G))
again = check(cu.cuMemAddressReserve(8 * G, 0, int(va), 0))
require(int(again) == int(va), "a free fixed address is honoured exactly")
other = check(cu.cuMemAddressReserve(2 * G, 0, int(va), 0))
require(int(other) != int(va), "an occupied address is not: another range is chosen")
check(cu.cuMemAddressFree(other, 2 * G))
fixed = 0x3A00_0000_0000  # any free address, as the proxy picks one per job
got = check(cu.cuMemAddressReserve(4 * G, 0, fixed, 0))
require(int(got) == fixed, f"fixed job base honoured: {int(got):#x}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAddressReserve(G + 1, 0, 0, 0), "size not a multiple of the granularity")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAddressFree(va, G), "free with the wrong size")

# Physical memory, mapped twice: the two mappings alias.
free0, _ = check(cu.cuMemGetInfo())
h = check(cu.cuMemCreate(2 * G, prop, 0))
free1, _ = check(cu.cuMemGetInfo())
require(free0 - free1 == 2 * G, "physical memory charged to the device")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemCreate(G + 4096, prop, 0), "size not granular")
a, b = int(va), int(va) + 4 * G
check(cu.cuMemMap(a, 2 * G, 0, h, 0))
check(cu.cuMemMap(b, 2 * G, 0, h, 0))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemMap(a, 2 * G, 0, h, 0), "mapping over a mapping")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemMap(a + 2 * G, 2 * G, G, h, 0), "offset + size past the allocation")
# No access granted yet: device copies are refused.
data = np.arange(G // 4, dtype=np.uint32)
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyHtoD(a, data, data.nbytes), "copy before cuMemSetAccess")
check(cu.cuMemSetAccess(a, 2 * G, [access], 1))
check(cu.cuMemSetAccess(b, 2 * G, [access], 1))
flags = check(cu.cuMemGetAccess(access.location, a))
require(flags == cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE, "access read back")
check(cu.cuMemcpyHtoD(a + 4096, data, data.nbytes))
back = np.empty_like(data)
check(cu.cuMemcpyDtoH(back, b + 4096, data.nbytes))
require(np.array_equal(back, data), "written through one mapping, read through the other")

# Properties, retained handles, release while mapped.
p2 = check(cu.cuMemGetAllocationPropertiesFromHandle(h))
require(p2.location.id == 0 and p2.type == prop.type, "allocation properties")
h2 = check(cu.cuMemRetainAllocationHandle(b + 100))
require(int(h2) == int(h), "retained handle is the allocation's")
check(cu.cuMemRelease(h2))
base, size = check(cu.cuMemGetAddressRange(a + 8))
require(int(base) == a and size == 2 * G, "address range of a mapping")
require(check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a))
        == cu.CUmemorytype.CU_MEMORYTYPE_DEVICE, "VMM memory is device memory")

# Export as a file descriptor and import: a third alias.
fd = check(cu.cuMemExportToShareableHandle(h, cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0))
require(fd >= 0, "exported fd")
h3 = check(cu.cuMemImportFromShareableHandle(fd, cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
os.close(fd)
c = int(got)
check(cu.cuMemMap(c, 2 * G, 0, h3, 0))
check(cu.cuMemSetAccess(c, 2 * G, [access], 1))
back3 = np.empty_like(data)
check(cu.cuMemcpyDtoH(back3, c + 4096, data.nbytes))
require(np.array_equal(back3, data), "imported allocation aliases the original")
check(cu.cuMemUnmap(c, 2 * G))
check(cu.cuMemRelease(h3))

# Releasing the handle while mapped keeps the memory; unmapping the last mapping frees it.
check(cu.cuMemRelease(h))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemRelease(h), "handle already released")
check(cu.cuMemsetD32(b, 7, 4))  # still mapped, still usable
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemUnmap(a, G), "partial unmap of a mapping")
check(cu.cuMemUnmap(a, 2 * G))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemcpyDtoH(back, a, 16), "unmapped range")
check(cu.cuMemUnmap(b, 2 * G))
free2, _ = check(cu.cuMemGetInfo())
require(free2 == free0, "memory returned once unmapped and released")
check(cu.cuMemAddressFree(va, 8 * G))
check(cu.cuMemAddressFree(got, 4 * G))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemAddressFree(got, 4 * G), "double address free")

prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_HOST
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuMemCreate(G, prop, 0), "host VMM allocations are not supported")
result(alias=digest(back, back3))
