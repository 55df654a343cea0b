"""Kernels compiled with NVRTC (-arch=sm_90 "CUBIN" and compute_90 PTX),
loaded as modules and libraries, launched with kernelParams and with
`extra`, with launch-configuration errors, function attributes, occupancy,
dynamic shared memory opt-in and module globals."""
import ctypes

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, load_module, nvrtc_compile, require, result

E = cu.CUresult
F = cu.CUfunction_attribute
dev, ctx = init()

SOURCE = r"""
__device__ int counter = 7;
__constant__ float scale[4] = {1.0f, 2.0f, 3.0f, 4.0f};

extern "C" __global__ void saxpy(float a, const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" __global__ void reverse_shared(const int* in, int* out) {
  extern __shared__ int tile[];
  int t = threadIdx.x;
  tile[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = tile[blockDim.x - 1 - t];
}

extern "C" __global__ void bump(int* out) {
  int old = atomicAdd(&counter, 1);
  out[old - 7] = old;
}

extern "C" __global__ void scaled(float* y) {
  y[threadIdx.x] *= scale[threadIdx.x & 3];
}

struct Pair { double a; int b; };
extern "C" __global__ void by_value(Pair p, char c, long long* out) {
  out[0] = (long long)p.a; out[1] = p.b; out[2] = c;
}
"""

cubin = nvrtc_compile(SOURCE, arch="sm_90")  # the simulator's NVRTC front returns PTX as the "CUBIN"
ptx = nvrtc_compile(SOURCE, arch="compute_90")
mod = load_module(cubin)
mod_ptx = load_module(ptx)
mod_nonul = load_module(ptx.rstrip(b"\0"))  # a Python bytes buffer: NUL-terminated or not, it loads
n_fn = check(cu.cuModuleGetFunctionCount(mod))
require(n_fn == 5, f"five kernels, got {n_fn}")
fns = check(cu.cuModuleEnumerateFunctions(n_fn, mod))
names = sorted(check(cu.cuFuncGetName(f)).decode() for f in fns)
require(names == ["bump", "by_value", "reverse_shared", "saxpy", "scaled"], f"kernel names {names}")
saxpy = check(cu.cuModuleGetFunction(mod, b"saxpy"))
expect(E.CUDA_ERROR_NOT_FOUND, cu.cuModuleGetFunction(mod, b"nope"), "missing kernel")
require(int(check(cu.cuFuncGetModule(saxpy))) == int(mod), "function's module")

# --- saxpy with kernelParams --------------------------------------------------------------------
n = 100_000
rng = np.random.default_rng(7)
x = rng.standard_normal(n).astype(np.float32)
y = rng.standard_normal(n).astype(np.float32)
dx, dy = check(cu.cuMemAlloc(x.nbytes)), check(cu.cuMemAlloc(y.nbytes))
check(cu.cuMemcpyHtoD(dx, x, x.nbytes))
check(cu.cuMemcpyHtoD(dy, y, y.nbytes))
a = np.float32(2.5)
vals = [np.array([a], np.float32), np.array([int(dx)], np.uint64), np.array([int(dy)], np.uint64),
        np.array([n], np.int32)]
params = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
s = check(cu.cuStreamCreate(0))
t0, t1 = check(cu.cuEventCreate(0)), check(cu.cuEventCreate(0))
check(cu.cuEventRecord(t0, s))
check(cu.cuLaunchKernel(saxpy, (n + 255) // 256, 1, 1, 256, 1, 1, 0, s, params.ctypes.data, 0))
check(cu.cuEventRecord(t1, s))
out = np.empty_like(y)
check(cu.cuMemcpyDtoHAsync(out, dy, y.nbytes, s))
want = (np.float64(a) * x + y).astype(np.float32)  # the GPU contracts a*x+y into one FMA
require(np.allclose(out, want, rtol=1e-6, atol=1e-6), "saxpy")
require(check(cu.cuEventElapsedTime(t0, t1)) >= 0.0, "kernel timing")

# --- the same through `extra` (a packed buffer) ---------------------------------------------
off_a, size_a = check(cu.cuFuncGetParamInfo(saxpy, 0))
off_n, size_n = check(cu.cuFuncGetParamInfo(saxpy, 3))
require((off_a, size_a, off_n, size_n) == (0, 4, 24, 4), f"param layout {(off_a, size_a, off_n, size_n)}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuFuncGetParamInfo(saxpy, 4), "no fifth parameter")
buf = np.zeros(32, dtype=np.uint8)
buf[0:4] = np.frombuffer(np.float32(-1.0).tobytes(), np.uint8)
buf[8:16] = np.frombuffer(np.uint64(int(dx)).tobytes(), np.uint8)
buf[16:24] = np.frombuffer(np.uint64(int(dy)).tobytes(), np.uint8)
buf[24:28] = np.frombuffer(np.int32(n).tobytes(), np.uint8)
size = ctypes.c_size_t(28)
extra = np.array([1, buf.ctypes.data, 2, ctypes.addressof(size), 0], dtype=np.uint64)  # BUFFER_POINTER, BUFFER_SIZE, END
check(cu.cuLaunchKernel(saxpy, (n + 255) // 256, 1, 1, 256, 1, 1, 0, s, 0, extra.ctypes.data))
check(cu.cuMemcpyDtoHAsync(out, dy, y.nbytes, s))
want2 = out.copy()
require(np.allclose(out, -x + want, rtol=1e-5, atol=1e-5), "launch through extra")
size.value = 20
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 1, 1, 1, 32, 1, 1, 0, s, 0, extra.ctypes.data),
       "extra buffer too small for the parameters")
size.value = 64
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 1, 1, 1, 32, 1, 1, 0, s, 0, extra.ctypes.data),
       "extra buffer size mismatch")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 1, 1, 1, 32, 1, 1, 0, s, 0, 0), "no parameters at all")
expect(E.CUDA_ERROR_INVALID_VALUE,
       cu.cuLaunchKernel(saxpy, 1, 1, 1, 32, 1, 1, 0, s, params.ctypes.data, extra.ctypes.data), "both forms")

# --- launch configuration limits ------------------------------------------------------------
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 1, 1, 1, 1025, 1, 1, 0, s, params.ctypes.data, 0),
       "more than 1024 threads")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 1, 1, 1, 1, 1, 65, 0, s, params.ctypes.data, 0),
       "block z above 64")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 0, 1, 1, 32, 1, 1, 0, s, params.ctypes.data, 0),
       "empty grid")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(saxpy, 1, 65536, 1, 32, 1, 1, 0, s, params.ctypes.data, 0),
       "grid y above 65535")
expect(E.CUDA_ERROR_INVALID_VALUE,
       cu.cuLaunchKernel(saxpy, 1, 1, 1, 32, 1, 1, 48 * 1024 + 4, s, params.ctypes.data, 0),
       "dynamic shared memory above 48 KiB without opt-in")

# --- dynamic shared memory, with opt-in beyond 48 KiB --------------------------------------------
rev = check(cu.cuModuleGetFunction(mod, b"reverse_shared"))
B = 1024
inp = np.arange(8 * B, dtype=np.int32)
din, dout = check(cu.cuMemAlloc(inp.nbytes)), check(cu.cuMemAlloc(inp.nbytes))
check(cu.cuMemcpyHtoD(din, inp, inp.nbytes))
rv = [np.array([int(din)], np.uint64), np.array([int(dout)], np.uint64)]
rp = np.array([v.ctypes.data for v in rv], dtype=np.uint64)
big = 100 * 1024
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuLaunchKernel(rev, 8, 1, 1, B, 1, 1, big, s, rp.ctypes.data, 0),
       "100 KiB needs the opt-in")
check(cu.cuFuncSetAttribute(rev, F.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, big))
require(check(cu.cuFuncGetAttribute(F.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, rev)) == big, "opt-in stored")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuFuncSetAttribute(rev, F.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                                         228 * 1024), "above the 227 KiB opt-in limit")
check(cu.cuLaunchKernel(rev, 8, 1, 1, B, 1, 1, big, s, rp.ctypes.data, 0))
res = np.empty_like(inp)
check(cu.cuMemcpyDtoHAsync(res, dout, res.nbytes, s))
require(np.array_equal(res, inp.reshape(8, B)[:, ::-1].ravel()), "block reversal through shared memory")

# --- attributes and occupancy --------------------------------------------------------------------
attrs = {a.name: check(cu.cuFuncGetAttribute(a, saxpy)) for a in
         (F.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, F.CU_FUNC_ATTRIBUTE_NUM_REGS, F.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES,
          F.CU_FUNC_ATTRIBUTE_PTX_VERSION, F.CU_FUNC_ATTRIBUTE_BINARY_VERSION, F.CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES)}
require(attrs["CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK"] == 1024, f"attributes {attrs}")
require(attrs["CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES"] == 16, f"16 bytes of __constant__: {attrs}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuFuncSetAttribute(saxpy, F.CU_FUNC_ATTRIBUTE_NUM_REGS, 8), "read-only")
blocks = check(cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(saxpy, 256, 0))
require(1 <= blocks <= 8, f"active blocks of 256 threads: {blocks}")
min_grid, block = check(cu.cuOccupancyMaxPotentialBlockSize(saxpy, None, 0, 0))
require(block % 32 == 0 and 0 < block <= 1024 and min_grid % 132 == 0, f"potential block size {min_grid} {block}")
smem = check(cu.cuOccupancyAvailableDynamicSMemPerBlock(rev, 2, 256))
require(0 < smem <= 227 * 1024, f"available dynamic shared memory {smem}")
check(cu.cuFuncSetCacheConfig(saxpy, cu.CUfunc_cache.CU_FUNC_CACHE_PREFER_L1))
require(check(cu.cuFuncIsLoaded(saxpy)) == cu.CUfunctionLoadingState.CU_FUNCTION_LOADING_STATE_LOADED, "loaded")

# --- module globals and constants --------------------------------------------------------------
bump = check(cu.cuModuleGetFunction(mod, b"bump"))
dctr, nbytes = check(cu.cuModuleGetGlobal(mod, b"counter"))
require(nbytes == 4, "global size")
first = np.empty(1, np.int32)
check(cu.cuMemcpyDtoH(first, dctr, 4))
require(first[0] == 7, "initialised global")
dslots = check(cu.cuMemAlloc(4 * 64))
bv = [np.array([int(dslots)], np.uint64)]
bp = np.array([v.ctypes.data for v in bv], dtype=np.uint64)
check(cu.cuLaunchKernel(bump, 2, 1, 1, 32, 1, 1, 0, s, bp.ctypes.data, 0))
slots = np.empty(64, np.int32)
check(cu.cuMemcpyDtoHAsync(slots, dslots, slots.nbytes, s))
require(sorted(slots) == list(range(7, 71)), "every thread got a distinct counter value")
check(cu.cuMemcpyDtoH(first, dctr, 4))
require(first[0] == 71, "global after the atomics")
other, _ = check(cu.cuModuleGetGlobal(mod_ptx, b"counter"))
require(int(other) != int(dctr), "each module has its own globals")
dscale, ssize = check(cu.cuModuleGetGlobal(mod, b"scale"))
require(ssize == 16, "constant size")
newscale = np.array([10, 20, 30, 40], np.float32)
check(cu.cuMemcpyHtoD(dscale, newscale, 16))
sc = check(cu.cuModuleGetFunction(mod, b"scaled"))
ones = np.ones(8, np.float32)
dones = check(cu.cuMemAlloc(32))
check(cu.cuMemcpyHtoD(dones, ones, 32))
sv = [np.array([int(dones)], np.uint64)]
sp = np.array([v.ctypes.data for v in sv], dtype=np.uint64)
check(cu.cuLaunchKernel(sc, 1, 1, 1, 8, 1, 1, 0, 0, sp.ctypes.data, 0))
check(cu.cuMemcpyDtoH(ones, dones, 32))
require(np.array_equal(ones, np.array([10, 20, 30, 40] * 2, np.float32)), "constants written by the host")

# --- struct and char parameters (alignment in the parameter buffer) -------------------------
bvf = check(cu.cuModuleGetFunction(mod, b"by_value"))
pair = np.zeros(1, dtype=[("a", np.float64), ("b", np.int32)])
pair["a"], pair["b"] = 1234.0, -5
ch = np.array([ord("Z")], np.int8)
dres = check(cu.cuMemAlloc(24))
rv = [pair, ch, np.array([int(dres)], np.uint64)]
rp2 = np.array([v.ctypes.data for v in rv], dtype=np.uint64)
check(cu.cuLaunchKernel(bvf, 1, 1, 1, 1, 1, 1, 0, 0, rp2.ctypes.data, 0))
got = np.empty(3, np.int64)
check(cu.cuMemcpyDtoH(got, dres, 24))
require(list(got) == [1234, -5, ord("Z")], f"by-value parameters {got}")

# --- the same code as a library, launched through a CUkernel ---------------------------------
lib = check(cu.cuLibraryLoadData(cubin, None, None, 0, None, None, 0))
require(check(cu.cuLibraryGetKernelCount(lib)) == 5, "library kernel count")
k = check(cu.cuLibraryGetKernel(lib, b"saxpy"))
require(check(cu.cuKernelGetName(k)).decode() == "saxpy", "kernel name")
kf = check(cu.cuKernelGetFunction(k))
require(check(cu.cuFuncGetName(kf)).decode() == "saxpy", "kernel's function")
vals[0][0] = 1.0
check(cu.cuLaunchKernel(kf, (n + 255) // 256, 1, 1, 256, 1, 1, 0, s, params.ctypes.data, 0))
check(cu.cuMemcpyDtoHAsync(out, dy, y.nbytes, s))
require(np.allclose(out, x + want2, rtol=1e-5, atol=1e-5), "library kernel")
lg, lsize = check(cu.cuLibraryGetGlobal(lib, b"counter"))
require(lsize == 4, "library global")
lmod = check(cu.cuLibraryGetModule(lib))
require(check(cu.cuModuleGetFunctionCount(lmod)) == 5, "library module")
check(cu.cuLibraryUnload(lib))
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuKernelGetFunction(k), "kernel of an unloaded library")

# No current context: a launch on the default stream has nothing to run in.
check(cu.cuCtxPopCurrent())
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuLaunchKernel(saxpy, 1, 1, 1, 32, 1, 1, 0, 0, params.ctypes.data, 0),
       "launch without a current context")
check(cu.cuCtxPushCurrent(ctx))

check(cu.cuModuleUnload(mod_nonul))
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuModuleGetFunction(mod_nonul, b"saxpy"), "unloaded module")
check(cu.cuCtxSynchronize())
result(saxpy=digest(out), reverse=digest(res), slots=digest(np.sort(slots)))
