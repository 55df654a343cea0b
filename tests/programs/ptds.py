"""Per-thread default streams.  Run with CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM=1:
cuda-python then binds the _ptsz/_ptds entry points, for which stream 0 is
the calling thread's own default stream."""
import ctypes
import os
import threading
import time

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, init, require, result, watchdog

E = cu.CUresult
require(os.environ.get("CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM") == "1", "run with per-thread default streams")
dev, ctx = init()
watchdog(60)

HOSTFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
keep = []


def host_fn(f):
    thunk = HOSTFN(lambda _: f())
    keep.append(thunk)
    return ctypes.cast(thunk, ctypes.c_void_p).value


gate = threading.Event()
a_queued = threading.Event()
b_result = {}
n = 4096


def thread_a():
    check(cu.cuCtxSetCurrent(ctx))
    check(cu.cuLaunchHostFunc(0, host_fn(lambda: gate.wait()), 0))  # blocks A's own stream
    a_queued.set()
    check(cu.cuStreamSynchronize(0))


def thread_b():
    check(cu.cuCtxSetCurrent(ctx))
    a_queued.wait()
    d = check(cu.cuMemAlloc(4 * n))
    src = np.arange(n, dtype=np.uint32) * 3
    check(cu.cuMemcpyHtoD(d, src, src.nbytes))  # synchronous on B's stream: not behind A's gate
    check(cu.cuMemsetD32Async(int(d) + 400, 5, 10, 0))
    ev = check(cu.cuEventCreate(0))
    check(cu.cuEventRecord(ev, 0))
    check(cu.cuEventSynchronize(ev))
    out = np.empty_like(src)
    check(cu.cuMemcpyDtoH(out, d, out.nbytes))
    b_result["data"] = out
    b_result["ptr"] = d  # freed later: cuMemFree synchronises the whole device, thread A's stream included


ta, tb = threading.Thread(target=thread_a), threading.Thread(target=thread_b)
ta.start()
tb.start()
tb.join(30)
require("data" in b_result, "thread B finished while thread A's default stream was blocked")
want = np.arange(n, dtype=np.uint32) * 3
want[100:110] = 5
require(np.array_equal(b_result["data"], want), "thread B's results")

# CU_STREAM_PER_THREAD names this thread's stream explicitly: independent of thread A's.
ev2 = check(cu.cuEventCreate(0))
check(cu.cuEventRecord(ev2, cu.CU_STREAM_PER_THREAD))
check(cu.cuEventSynchronize(ev2))
# The legacy stream still synchronises with every blocking stream, per-thread ones included
# (and from now on this thread's stream waits behind it, as on a GPU).
ev = check(cu.cuEventCreate(0))
check(cu.cuEventRecord(ev, cu.CU_STREAM_LEGACY))
time.sleep(0.02)
require(cu.cuEventQuery(ev)[0] == E.CUDA_ERROR_NOT_READY, "legacy stream waits behind thread A's stream")
gate.set()
ta.join(30)
check(cu.cuEventSynchronize(ev))
check(cu.cuCtxSynchronize())
check(cu.cuMemFree(b_result["ptr"]))
result(data=digest(b_result["data"]))
