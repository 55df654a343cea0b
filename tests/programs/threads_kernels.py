"""Several threads launching kernels at once, each on its own streams,
sharing one module; kernels of different streams overlap while events
order the work that depends on them."""
import threading

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, init, load_module, nvrtc_compile, require, result, watchdog

SOURCE = r"""
extern "C" __global__ void step(unsigned* v, unsigned salt, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) v[i] = v[i] * 1664525u + 1013904223u + salt;
}
extern "C" __global__ void combine(unsigned* dst, const unsigned* a, const unsigned* b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = a[i] ^ (b[i] >> 3);
}
"""
dev, ctx = init()
watchdog(180)
mod = load_module(nvrtc_compile(SOURCE))
step = check(cu.cuModuleGetFunction(mod, b"step"))
combine = check(cu.cuModuleGetFunction(mod, b"combine"))
THREADS, STEPS, N = 4, 20, 1 << 12
results, errors = [None] * THREADS, []


def host_model(seed, salt):
    v = (np.arange(N, dtype=np.uint64) * (seed + 1)) & 0xFFFFFFFF
    for _ in range(STEPS):
        v = (v * 1664525 + 1013904223 + salt) & 0xFFFFFFFF
    return v.astype(np.uint32)


def worker(t):
    try:
        check(cu.cuCtxSetCurrent(ctx))
        sa, sb = (check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING)) for _ in range(2))
        da, db, dc = (check(cu.cuMemAlloc(4 * N)) for _ in range(3))
        check(cu.cuMemcpyHtoD(da, ((np.arange(N, dtype=np.uint64) * (t + 1)) & 0xFFFFFFFF).astype(np.uint32), 4 * N))
        check(cu.cuMemcpyHtoD(db, ((np.arange(N, dtype=np.uint64) * (t + 2)) & 0xFFFFFFFF).astype(np.uint32), 4 * N))
        # A pageable HtoD may return before the device has the data; sa and sb are non-blocking.
        check(cu.cuStreamSynchronize(0))
        keep = []
        for dst, salt, s in ((da, t, sa), (db, 100 + t, sb)):
            vals = [np.array([int(dst)], np.uint64), np.array([salt], np.uint32), np.array([N], np.int32)]
            ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
            keep.append((vals, ptrs))
            for _ in range(STEPS):
                check(cu.cuLaunchKernel(step, N // 128, 1, 1, 128, 1, 1, 0, s, ptrs.ctypes.data, 0))
        done_b = check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING))
        check(cu.cuEventRecord(done_b, sb))
        check(cu.cuStreamWaitEvent(sa, done_b, 0))
        vals = [np.array([int(x)], np.uint64) for x in (dc, da, db)] + [np.array([N], np.int32)]
        ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
        check(cu.cuLaunchKernel(combine, N // 128, 1, 1, 128, 1, 1, 0, sa, ptrs.ctypes.data, 0))
        out = np.empty(N, np.uint32)
        check(cu.cuMemcpyDtoHAsync(out, dc, 4 * N, sa))
        want = host_model(t, t) ^ (host_model(t + 1, 100 + t) >> 3)
        if not np.array_equal(out, want):
            raise AssertionError(f"thread {t}: wrong result")
        results[t] = out
    except Exception as e:  # noqa: BLE001 - reported below
        errors.append(f"thread {t}: {e!r}")


ts = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
require(not errors, "; ".join(errors))
result(out=digest(*results))
