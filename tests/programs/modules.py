"""Module images: PTX files, fatbins (Zstandard, LZ4 and stored entries,
several architectures, the registration wrapper), machine code refused with
a clear error, broken images."""
import ctypes
import os
import tempfile

import numpy as np
from cuda.bindings import driver as cu

from simcommon import ENGINE_MISSING, check, digest, expect, init, load_module, require, result, skip

E = cu.CUresult
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
dev, ctx = init()


def data(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def load_with_log(image):
    log = bytes(2048)
    opts = [cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER, cu.CUjit_option.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES]
    err, mod = cu.cuModuleLoadDataEx(image, len(opts), opts, [log, len(log)])
    return err, mod, log.split(b"\0", 1)[0].decode()


# --- refused before the engine is involved --------------------------------------------------
err, _, log = load_with_log(data("sm90.cubin"))
require(err == E.CUDA_ERROR_NO_BINARY_FOR_GPU and "ELF cubin" in log, f"machine code refused: {err} {log}")
err, _, log = load_with_log(data("sass_only.fatbin"))
require(err == E.CUDA_ERROR_NO_BINARY_FOR_GPU and "sm_80" in log and "sm_90" in log, f"SASS-only fatbin: {log}")
err, _, log = load_with_log(data("ptx100_only.fatbin"))
require(err == E.CUDA_ERROR_NO_BINARY_FOR_GPU and "PTX 100" in log, f"PTX for a newer GPU only: {log}")
truncated = bytearray(data("ptx90_lz4.fatbin"))
truncated[8:16] = (1 << 20).to_bytes(8, "little")  # claims a megabyte of entries
err, _, log = load_with_log(bytes(truncated))
require(err == E.CUDA_ERROR_INVALID_IMAGE, f"corrupt container: {err} {log}")
expect(E.CUDA_ERROR_INVALID_IMAGE, cu.cuModuleLoadData(b"\x01\x02\x03garbage\x00"), "binary garbage")
expect(E.CUDA_ERROR_FILE_NOT_FOUND, cu.cuModuleLoad(b"/nonexistent/kernel.ptx"), "missing file")
expect(E.CUDA_ERROR_NO_BINARY_FOR_GPU, cu.cuLibraryLoadData(data("sm90.cubin"), None, None, 0, None, None, 0),
       "library from machine code")
require(check(cu.cuModuleGetLoadingMode()) == cu.CUmoduleLoadingMode.CU_MODULE_EAGER_LOADING, "eager loading")

# --- everything below runs kernels -----------------------------------------------------------
err, _, log = load_with_log(b".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k( {\n")
if ENGINE_MISSING in log:
    skip(f"the PTX engine is not built yet ({log})")
require(err == E.CUDA_ERROR_INVALID_PTX and log, f"broken PTX: {err} {log!r}")

n = 1000
host = np.arange(n, dtype=np.int32)
d = check(cu.cuMemAlloc(4 * n))
outputs = {}


def run(mod, tag):
    f = check(cu.cuModuleGetFunction(mod, b"triple"))
    check(cu.cuMemcpyHtoD(d, host, 4 * n))
    vals = [np.array([int(d)], np.uint64), np.array([n], np.int32)]
    ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
    check(cu.cuLaunchKernel(f, (n + 255) // 256, 1, 1, 256, 1, 1, 0, 0, ptrs.ctypes.data, 0))
    out = np.empty_like(host)
    check(cu.cuMemcpyDtoH(out, d, 4 * n))
    require(np.array_equal(out, host * 3), f"kernel from {tag}")
    gptr, gsize = check(cu.cuModuleGetGlobal(mod, b"marker"))
    g = np.empty(1, np.int32)
    check(cu.cuMemcpyDtoH(g, gptr, 4))
    require(gsize == 4 and g[0] == 1234, f"global from {tag}")
    outputs[tag] = digest(out)


for name in ("ptx90_zstd.fatbin", "ptx90_lz4.fatbin", "ptx90_75_plain.fatbin"):
    run(load_module(data(name)), name)

# The registration wrapper that host code passes to __cudaRegisterFatBinary.
image = data("ptx90_lz4.fatbin")
buf = ctypes.create_string_buffer(image, len(image))


class Wrapper(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_int), ("version", ctypes.c_int), ("data", ctypes.c_void_p),
                ("filename_or_fatbins", ctypes.c_void_p)]


w = Wrapper(0x466243B1, 1, ctypes.addressof(buf), None)
run(check(cu.cuModuleLoadFatBinary(ctypes.addressof(w))), "wrapper")

# A PTX file on disk (cuModuleLoad) and a library from a file.
ptx = b"""
.version 8.0
.target sm_90
.address_size 64
.visible .global .align 4 .u32 marker = 1234;
.visible .entry triple(.param .u64 v, .param .u32 n) {
  .reg .pred %p; .reg .b32 %r<6>; .reg .b64 %rd<4>;
  ld.param.u64 %rd1, [v];
  ld.param.u32 %r1, [n];
  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;
  mad.lo.s32 %r2, %r2, %r3, %r4;
  setp.ge.s32 %p, %r2, %r1;
  @%p bra DONE;
  cvta.to.global.u64 %rd1, %rd1;
  mul.wide.s32 %rd2, %r2, 4;
  add.s64 %rd3, %rd1, %rd2;
  ld.global.u32 %r5, [%rd3];
  mul.lo.s32 %r5, %r5, 3;
  st.global.u32 [%rd3], %r5;
DONE:
  ret;
}
"""
path = os.path.join(tempfile.mkdtemp(), "triple.ptx")
with open(path, "wb") as f:
    f.write(ptx)
run(check(cu.cuModuleLoad(path.encode())), "ptx file")
lib = check(cu.cuLibraryLoadFromFile(path.encode(), None, None, 0, None, None, 0))
run(check(cu.cuLibraryGetModule(lib)), "library file")
check(cu.cuLibraryUnload(lib))
result(**outputs)
