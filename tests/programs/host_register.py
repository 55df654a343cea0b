"""cuMemHostRegister of the app's own memory: registrations sharing a page,
device writes and reads of registered memory, unregistering one of two
neighbours, registering again, and the errors (overlap, unmapped memory,
double unregister)."""
import ctypes
import mmap

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result

E = cu.CUresult
dev, ctx = init()
DEVMAP = cu.CU_MEMHOSTREGISTER_DEVICEMAP
d = check(cu.cuMemAlloc(1 << 16))

# Two registrations in one page-aligned buffer, the second starting in the first's last page.
buf = np.zeros(3 * 4096, np.uint8)
base = buf.ctypes.data
first, second = base + 100, base + 5000
check(cu.cuMemHostRegister(first, 4000, DEVMAP))
check(cu.cuMemHostRegister(second, 6000, DEVMAP))
expect(E.CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, cu.cuMemHostRegister(base + 4000, 200, 0), "overlap")
require(int(check(cu.cuMemHostGetDevicePointer(second, 0))) == second, "device pointer of the second")
# The device writes both (memset on their device pointers) and reads them back.
check(cu.cuMemsetD8(first, 7, 4000))
check(cu.cuMemsetD8(second, 9, 6000))
require((buf[100:4100] == 7).all() and (buf[5000:11000] == 9).all(), "device writes seen by the app")
require(buf[4100:5000].sum() == 0 and buf[:100].sum() == 0, "bytes between the registrations untouched")
buf[5000:11000] = np.arange(6000) % 251
check(cu.cuMemcpyDtoD(d, second, 6000))
back = np.empty(6000, np.uint8)
check(cu.cuMemcpyDtoH(back, d, 6000))
require(np.array_equal(back, buf[5000:11000]), "app writes seen by the device")
# Unregistering the first keeps the second (which shares its page) working.
check(cu.cuMemHostUnregister(first))
expect(E.CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cu.cuMemHostUnregister(first), "double unregister")
check(cu.cuMemsetD8(second, 3, 6000))
require((buf[5000:11000] == 3).all() and (buf[100:4100] == 7).all(), "second still registered, first kept")
expect(E.CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, cu.cuMemHostUnregister(second + 8), "not the start")
check(cu.cuMemHostUnregister(second))
# Registered again after unregistering: the contents are those the app left.
check(cu.cuMemHostRegister(first, 4000, DEVMAP))
check(cu.cuMemcpyDtoD(d, first, 4000))
back = np.empty(4000, np.uint8)
check(cu.cuMemcpyDtoH(back, d, 4000))
require((back == 7).all(), "registered again")
check(cu.cuMemHostUnregister(first))
buf[:] = 1  # the app's memory all along
require(buf.sum() == buf.size, "still the app's memory")

# Memory that is not there cannot be registered.
guard = mmap.mmap(-1, 3 * 4096)
hole = ctypes.addressof(ctypes.c_char.from_buffer(guard)) + 4096
libc = ctypes.CDLL(None)
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
require(libc.munmap(hole, 4096) == 0, "hole made")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemHostRegister(hole, 4096, 0), "unmapped memory")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemHostRegister(0, 64, 0), "null")
result(buf=digest(buf), back=digest(back))
