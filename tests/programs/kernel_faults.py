"""Kernel faults are sticky: after an illegal address (or misaligned access,
trap, failed assert) every later call on the context returns the error, as
on a GPU, until the context is reset; other contexts are unaffected."""
import ctypes
import threading

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, expect, init, load_module, nvrtc_compile, require, result

E = cu.CUresult
SOURCE = r"""
// NVRTC has no <cassert>: the device-side assert, spelled out as CUDA's header does.
extern "C" __device__ void __assertfail(const char* msg, const char* file, unsigned line, const char* fn,
                                        unsigned long size);
#define assert(e) ((e) ? (void)0 : __assertfail(#e, __FILE__, __LINE__, __func__, 1))
extern "C" __global__ void poke(unsigned long long addr, int value) {
  *(volatile int*)addr = value;
}
extern "C" __global__ void poke_misaligned(char* base) {
  *(volatile int*)(base + 2) = 1;
}
extern "C" __global__ void trapper() { __trap(); }
extern "C" __global__ void asserter(int v) { assert(v == 42); }
extern "C" __global__ void fill(int* p, int v) { p[threadIdx.x] = v; }
"""
dev, ctx = init()
img = nvrtc_compile(SOURCE)


def setup():
    mod = load_module(img)
    return {name: check(cu.cuModuleGetFunction(mod, name.encode()))
            for name in ("poke", "poke_misaligned", "trapper", "asserter", "fill")}


def u64(v):
    return np.array([v], dtype=np.uint64)


def i32(v):
    return np.array([v], dtype=np.int32)


def launch(f, *vals, threads=1, stream=0):
    """Launches f with the given typed argument arrays (u64 / i32: the kernel's parameter types)."""
    args = vals
    ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
    return cu.cuLaunchKernel(f, 1, 1, 1, threads, 1, 1, 0, stream, ptrs.ctypes.data if args else 0, 0)


def expect_sticky(code, what):
    """The fault surfaces at the next synchronisation and stays."""
    expect(code, cu.cuCtxSynchronize(), f"{what}: synchronize")
    expect(code, cu.cuMemAlloc(64), f"{what}: later allocation")
    expect(code, cu.cuStreamCreate(0), f"{what}: later stream")
    expect(code, cu.cuCtxSynchronize(), f"{what}: still")
    check(cu.cuDevicePrimaryCtxReset(dev))  # the way back
    check(cu.cuCtxSynchronize())


seen = {}
k = setup()
buf = check(cu.cuMemAlloc(256))
# A write one past the end of an allocation, then into freed memory, then into unknown memory.
for what, addr in (("past the end", int(buf) + 256), ("freed", None), ("unmapped", 0x100)):
    if addr is None:
        k = setup()
        tmp = check(cu.cuMemAlloc(256))
        check(cu.cuMemFree(tmp))
        addr = int(tmp)
    check(launch(k["poke"], u64(addr), i32(5)))  # the launch itself succeeds: the fault is asynchronous
    expect_sticky(E.CUDA_ERROR_ILLEGAL_ADDRESS, what)
    seen[what] = "ILLEGAL_ADDRESS"
    k = setup()

# Host memory the driver does not know is not device-accessible either.
host = np.zeros(16, np.int32)
check(launch(k["poke"], u64(host.ctypes.data), i32(9)))
expect_sticky(E.CUDA_ERROR_ILLEGAL_ADDRESS, "pageable host memory")
require(host[0] == 0, "the kernel did not touch pageable memory")

k = setup()
buf = check(cu.cuMemAlloc(256))
check(launch(k["poke_misaligned"], u64(int(buf))))
expect_sticky(E.CUDA_ERROR_MISALIGNED_ADDRESS, "misaligned")

k = setup()
check(launch(k["trapper"]))
expect_sticky(E.CUDA_ERROR_LAUNCH_FAILED, "trap")

k = setup()
check(launch(k["asserter"], i32(42)))
check(cu.cuCtxSynchronize())  # a passing assert is no fault
check(launch(k["asserter"], i32(7)))
expect_sticky(E.CUDA_ERROR_ASSERT, "assert")

# Work queued behind the faulting kernel does not run; a second context is unaffected.
k = setup()
out = check(cu.cuMemAlloc(4 * 32))
check(cu.cuMemsetD32(out, 0, 32))
other = check(cu.cuCtxCreate(cu.CUctxCreateParams(), 0, dev))
kk = setup()
obuf = check(cu.cuMemAlloc(4 * 32))
check(cu.cuCtxPopCurrent())  # back to the primary context
s = check(cu.cuStreamCreate(0))
# Hold the stream so both launches are queued before the first one faults
# (a launch made after the fault would itself return the sticky error).
gate = threading.Event()
HOSTFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
wait_gate = HOSTFN(lambda _: gate.wait())
check(cu.cuLaunchHostFunc(s, ctypes.cast(wait_gate, ctypes.c_void_p).value, 0))
check(launch(k["poke"], u64(0x100), i32(1), stream=s))
check(launch(k["fill"], u64(int(out)), i32(3), threads=32, stream=s))
gate.set()
expect(E.CUDA_ERROR_ILLEGAL_ADDRESS, cu.cuStreamSynchronize(s), "stream sync reports the fault")
check(cu.cuCtxPushCurrent(other))
check(launch(kk["fill"], u64(int(obuf)), i32(4), threads=32))
res = np.empty(32, np.int32)
check(cu.cuMemcpyDtoH(res, obuf, res.nbytes))
require((res == 4).all(), "another context keeps working")
check(cu.cuCtxDestroy(other))
expect(E.CUDA_ERROR_ILLEGAL_ADDRESS, cu.cuMemcpyDtoH(res, out, res.nbytes), "primary context still faulted")
check(cu.cuDevicePrimaryCtxReset(dev))
k = setup()
out = check(cu.cuMemAlloc(4 * 32))
check(launch(k["fill"], u64(int(out)), i32(6), threads=32))
check(cu.cuMemcpyDtoH(res, out, res.nbytes))
require((res == 6).all(), "after reset the context works again")
result(faults=seen)
