"""Many threads using the driver at once: each allocates, copies, sets memory
and records events on its own streams while others do the same and free."""
import os
import threading

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, init, require, result, watchdog

dev, ctx = init()
watchdog(120)

THREADS, ROUNDS, N = 8, 25, 1 << 14
outputs = [None] * THREADS
errors = []


def worker(t):
    try:
        check(cu.cuCtxSetCurrent(ctx))
        rng = np.random.default_rng(t)
        streams = [check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING)) for _ in range(2)]
        ev = check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING))
        acc = np.zeros(N, dtype=np.uint32)
        for r in range(ROUNDS):
            a = rng.integers(0, 1 << 30, size=N, dtype=np.uint32)
            d = check(cu.cuMemAlloc(a.nbytes))
            d2 = check(cu.cuMemAllocAsync(a.nbytes, streams[1]))
            s0, s1 = streams
            check(cu.cuMemcpyHtoDAsync(d, a, a.nbytes, s0))
            check(cu.cuMemsetD32Async(d, r, 16, s0))
            check(cu.cuEventRecord(ev, s0))
            check(cu.cuStreamWaitEvent(s1, ev, 0))
            check(cu.cuMemcpyDtoDAsync(d2, d, a.nbytes, s1))
            out = np.empty_like(a)
            check(cu.cuMemcpyDtoHAsync(out, d2, a.nbytes, s1))  # pageable: returns when done
            check(cu.cuMemFreeAsync(d2, s1))
            a[:16] = r
            if not np.array_equal(out, a):
                raise AssertionError(f"thread {t} round {r}: wrong data")
            acc ^= out
            check(cu.cuMemFree(d))
        for s in streams:
            check(cu.cuStreamDestroy(s))
        check(cu.cuEventDestroy(ev))
        outputs[t] = acc
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        errors.append(f"thread {t}: {e!r}")


ts = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
require(not errors, "; ".join(errors))
check(cu.cuCtxSynchronize())
free, total = check(cu.cuMemGetInfo())
result(xor=digest(*outputs))
