"""Helpers shared by the test programs.

The programs are ordinary cuda-python programs: they would run unchanged on a
real GPU.  Each checks its own results against numpy, exits non-zero on
failure, and ends with one line `RESULT {json}` of deterministic digests of
its outputs, so that the same program run through the proxy can be compared
line for line.

Exit status 77 means "skipped": the program needs the PTX engine and the
engine reported itself missing (that exact message, nothing else).
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
from cuda.bindings import driver as cu

SKIP = 77
ENGINE_MISSING = "PTX engine not built"


class CudaError(RuntimeError):
    def __init__(self, err, what=""):
        self.err = err
        super().__init__(f"{what}: {name(err)}" if what else name(err))


def name(err) -> str:
    rc, s = cu.cuGetErrorName(err)
    return s.decode() if rc == cu.CUresult.CUDA_SUCCESS and s else str(err)


def check(result, what=""):
    """Unwraps a cuda-python result tuple; raises CudaError unless it succeeded."""
    if isinstance(result, tuple):
        err, rest = result[0], result[1:]
    else:
        err, rest = result, ()
    if err != cu.CUresult.CUDA_SUCCESS:
        raise CudaError(err, what)
    if len(rest) == 0:
        return None
    return rest[0] if len(rest) == 1 else rest


def expect(code, result, what=""):
    """Asserts that a call failed with exactly `code`."""
    err = result[0] if isinstance(result, tuple) else result
    if err != code:
        raise AssertionError(f"{what}: expected {name(code)}, got {name(err)}")


def require(cond, what):
    if not cond:
        raise AssertionError(what)


def init(ordinal: int = 0):
    """cuInit, then the device's primary context made current (what the runtime does)."""
    check(cu.cuInit(0), "cuInit")
    dev = check(cu.cuDeviceGet(ordinal), "cuDeviceGet")
    ctx = check(cu.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain")
    check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    return dev, ctx


def watchdog(seconds: float):
    """A hang must fail the program, not stall the test suite."""
    import os
    import threading

    t = threading.Timer(seconds, lambda: (print("watchdog: hung", flush=True), os._exit(3)))
    t.daemon = True
    t.start()


def skip(reason: str):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def load_module(image: bytes):
    """cuModuleLoadDataEx with an error log; skips when (and only when) the engine is missing."""
    log = bytes(4096)  # written through its char*, as cuda-python's own samples do
    opts = [cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER, cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
    err, mod = cu.cuModuleLoadDataEx(image, len(opts), opts, [log, len(log)])
    if err != cu.CUresult.CUDA_SUCCESS:
        text = log.split(b"\0", 1)[0].decode(errors="replace")
        if ENGINE_MISSING in text:
            skip(f"the PTX engine is not built yet ({text})")
        raise CudaError(err, f"cuModuleLoadDataEx: {text}")
    return mod


def _preload_nvrtc_builtins():
    """Works around the simulator's NVRTC front (libsimnvrtc.so): NVRTC dlopens
    libnvrtc-builtins.so.13.0 by bare name, which only succeeds when something
    has loaded it already.  cuda-python's loader does so when it loads NVRTC
    itself, but with the front preloaded it finds "libnvrtc.so.13" loaded and
    skips that step, and every compile fails with "failed to open
    libnvrtc-builtins.so.13.0".  Loading it from the real NVRTC's directory
    first is what cuda-python would have done.  No-op off the simulator."""
    import ctypes
    import glob
    import os

    real = os.environ.get("SINGULARITY_REAL_NVRTC")
    if not real:
        return
    for lib in sorted(glob.glob(os.path.join(os.path.dirname(real), "libnvrtc-builtins.so.*"))):
        if ".alt." not in lib:
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)


def nvrtc_compile(source: str, name_: str = "prog.cu", arch: str = "sm_90", extra=()) -> bytes:
    """Compiles CUDA C++ with NVRTC and returns the "CUBIN" (the simulator's NVRTC front hands back PTX)."""
    from cuda.bindings import nvrtc

    _preload_nvrtc_builtins()

    def ok(r):
        if r[0] != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise RuntimeError(f"nvrtc: {r[0]}")
        return r[1] if len(r) > 1 else None

    prog = ok(nvrtc.nvrtcCreateProgram(source.encode(), name_.encode(), 0, [], []))
    opts = [f"--gpu-architecture={arch}".encode(), b"-default-device", *[o.encode() for o in extra]]
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0]
    if rc != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        size = ok(nvrtc.nvrtcGetProgramLogSize(prog))
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        raise RuntimeError(f"nvrtc compile failed: {log.decode(errors='replace')}")
    if arch.startswith("sm_"):
        size = ok(nvrtc.nvrtcGetCUBINSize(prog))
        out = b" " * size
        ok(nvrtc.nvrtcGetCUBIN(prog, out))
    else:
        size = ok(nvrtc.nvrtcGetPTXSize(prog))
        out = b" " * size
        ok(nvrtc.nvrtcGetPTX(prog, out))
    nvrtc.nvrtcDestroyProgram(prog)
    return out


def cuda_include_flags() -> tuple[str, ...]:
    """-I flags for the CUDA toolkit headers (cooperative groups and the like need them under NVRTC)."""
    import os

    base = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    inc = os.path.join(base, "include")
    return (f"-I{inc}", f"-I{os.path.join(inc, 'cccl')}")


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def result(**fields):
    print("RESULT " + json.dumps(fields, sort_keys=True))
