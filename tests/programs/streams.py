"""Streams and events: asynchrony, the legacy default stream's implicit
synchronisation, non-blocking streams, cross-stream waits, host functions,
callbacks, timing, stream memory operations."""
import ctypes
import os
import threading
import time

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result, watchdog

E = cu.CUresult
dev, ctx = init()

# A hang must fail the test, not stall it.
watchdog(60)

HOSTFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
keep = []  # ctypes thunks must outlive the work that calls them
order = []
lock = threading.Lock()


def host_fn(f):
    thunk = HOSTFN(lambda _: f())
    keep.append(thunk)
    return ctypes.cast(thunk, ctypes.c_void_p).value


def note(tag):
    def f():
        with lock:
            order.append(tag)
    return host_fn(f)


def wait_for(gate):
    return host_fn(lambda: gate.wait())


def done(ev):
    return cu.cuEventQuery(ev)[0] == E.CUDA_SUCCESS


# --- stream creation and queries ---------------------------------------------------------------
s1 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_DEFAULT))
s2 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
s3 = check(cu.cuStreamCreateWithPriority(0, -10))
require(check(cu.cuStreamGetPriority(s3)) == -5, "priority clamped to the greatest")
require(check(cu.cuStreamGetFlags(s2)) == cu.CUstream_flags.CU_STREAM_NON_BLOCKING, "flags")
require(int(check(cu.cuStreamGetCtx(s1))) == int(ctx), "stream context")
require(int(check(cu.cuStreamGetDevice(s1))) == 0, "stream device")
require(check(cu.cuStreamGetId(s1)) != check(cu.cuStreamGetId(s2)), "stream ids differ")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuStreamCreate(0x4), "unknown stream flag")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuStreamQuery(cu.CUstream(0xBAD0000)), "random stream handle")

# --- legacy default stream semantics ------------------------------------------------------------
# s1 (blocking) is held by a gate.  Work on the legacy stream must wait for it,
# and later work on blocking s3 must wait for the legacy stream; non-blocking
# s2 runs regardless.
gate = threading.Event()
check(cu.cuLaunchHostFunc(s1, wait_for(gate), 0))
check(cu.cuLaunchHostFunc(s1, note("s1"), 0))
check(cu.cuLaunchHostFunc(0, note("legacy"), 0))
ev_legacy = check(cu.cuEventCreate(0))
check(cu.cuEventRecord(ev_legacy, 0))
check(cu.cuLaunchHostFunc(s3, note("s3"), 0))
ev_s3 = check(cu.cuEventCreate(0))
check(cu.cuEventRecord(ev_s3, s3))
check(cu.cuLaunchHostFunc(s2, note("s2"), 0))
ev_s2 = check(cu.cuEventCreate(0))
check(cu.cuEventRecord(ev_s2, s2))
check(cu.cuEventSynchronize(ev_s2))  # would hang if s2 waited for the legacy stream
time.sleep(0.05)
require(not done(ev_legacy) and not done(ev_s3), "legacy and blocking streams wait behind s1")
expect(E.CUDA_ERROR_NOT_READY, cu.cuStreamQuery(s1), "s1 busy")
expect(E.CUDA_ERROR_NOT_READY, cu.cuEventQuery(ev_legacy), "event not reached")
gate.set()
check(cu.cuCtxSynchronize())
require(order == ["s2", "s1", "legacy", "s3"], f"execution order {order}")
check(cu.cuStreamQuery(s1))

# --- cross-stream waits with events --------------------------------------------------------------
order.clear()
gate2 = threading.Event()
ev = check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING))
check(cu.cuLaunchHostFunc(s2, wait_for(gate2), 0))
check(cu.cuLaunchHostFunc(s2, note("producer"), 0))
check(cu.cuEventRecord(ev, s2))
check(cu.cuStreamWaitEvent(s3, ev, 0))
check(cu.cuLaunchHostFunc(s3, note("consumer"), 0))
check(cu.cuEventRecord(ev, s3))  # re-recording does not change what s3 already waits for
time.sleep(0.02)
require(order == [], "consumer waits for producer")
gate2.set()
check(cu.cuStreamSynchronize(s3))
require(order == ["producer", "consumer"], f"event ordering {order}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuStreamWaitEvent(s3, ev, 0x8), "unknown wait flag")

# --- timing --------------------------------------------------------------------------------------
t0, t1 = check(cu.cuEventCreate(0)), check(cu.cuEventCreate(0))
notime = check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING))
never = check(cu.cuEventCreate(0))
check(cu.cuEventQuery(never))  # never recorded: complete
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventElapsedTime(never, t0), "elapsed of unrecorded events")
check(cu.cuEventRecord(t0, s1))
check(cu.cuLaunchHostFunc(s1, host_fn(lambda: time.sleep(0.03)), 0))
check(cu.cuEventRecord(t1, s1))
check(cu.cuEventRecord(notime, s1))
check(cu.cuEventSynchronize(t1))
ms = check(cu.cuEventElapsedTime(t0, t1))
require(25.0 <= ms < 2000.0, f"elapsed {ms} ms around a 30 ms host function")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventElapsedTime(t0, notime), "DISABLE_TIMING event")
gate3 = threading.Event()
check(cu.cuLaunchHostFunc(s1, wait_for(gate3), 0))
check(cu.cuEventRecord(t1, s1))
expect(E.CUDA_ERROR_NOT_READY, cu.cuEventElapsedTime(t0, t1), "end event not complete")
gate3.set()
check(cu.cuEventSynchronize(t1))
check(cu.cuEventRecordWithFlags(t0, s1, cu.CUevent_record_flags.CU_EVENT_RECORD_DEFAULT))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuEventCreate(0x40), "unknown event flag")
check(cu.cuEventDestroy(never))
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventQuery(never), "use after destroy")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventDestroy(never), "double destroy")

# --- callbacks and host functions -------------------------------------------------------------
statuses = []
cb = CALLBACK(lambda s, status, ud: statuses.append(status))
check(cu.cuStreamAddCallback(s1, ctypes.cast(cb, ctypes.c_void_p).value, 0, 0))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuStreamAddCallback(s1, ctypes.cast(cb, ctypes.c_void_p).value, 0, 1),
       "callback flags must be 0")
inner = []
check(cu.cuLaunchHostFunc(s1, host_fn(lambda: inner.append(cu.cuMemAlloc(16)[0])), 0))
check(cu.cuStreamSynchronize(s1))
require(statuses == [0], f"callback status {statuses}")
require(inner == [E.CUDA_ERROR_NOT_PERMITTED], f"CUDA calls inside host functions are refused: {inner}")

# --- asynchronous copies keep stream order; the host buffer may be reused at once -------------
n = 1 << 16
d = check(cu.cuMemAlloc(4 * n))
src = np.arange(n, dtype=np.uint32)
gate4 = threading.Event()
check(cu.cuLaunchHostFunc(s2, wait_for(gate4), 0))
check(cu.cuMemcpyHtoDAsync(d, src, src.nbytes, s2))
src[:] = 7  # pageable source: already staged by the call
check(cu.cuMemsetD32Async(int(d) + 4 * 10, 99, 5, s2))
pinned = check(cu.cuMemAllocHost(4 * n))
out = np.frombuffer((ctypes.c_uint32 * n).from_address(int(pinned)), dtype=np.uint32)
check(cu.cuMemcpyDtoHAsync(pinned, d, 4 * n, s2))  # pinned destination: returns at once
require(cu.cuStreamQuery(s2)[0] == E.CUDA_ERROR_NOT_READY, "queued behind the gate")
gate4.set()
check(cu.cuStreamSynchronize(s2))
want = np.arange(n, dtype=np.uint32)
want[10:15] = 99
require(np.array_equal(out, want), "async copy / memset / copy-back in order")

# --- stream memory operations -----------------------------------------------------------------
flag = check(cu.cuMemAllocHost(8))
fl = (ctypes.c_uint32 * 2).from_address(int(flag))
fl[0] = fl[1] = 0
check(cu.cuStreamWaitValue32(s1, flag, 1, cu.CUstreamWaitValue_flags.CU_STREAM_WAIT_VALUE_GEQ))
check(cu.cuStreamWriteValue32(s1, int(flag) + 4, 42, 0))
time.sleep(0.02)
require(fl[1] == 0, "write waits behind the wait")
fl[0] = 1
check(cu.cuStreamSynchronize(s1))
require(fl[1] == 42, "stream write value")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuStreamWriteValue32(s1, int(flag) + 1, 1, 0), "misaligned write value")

# --- context-wide events ---------------------------------------------------------------------------
gate6 = threading.Event()
check(cu.cuLaunchHostFunc(s2, wait_for(gate6), 0))  # non-blocking stream: covered by cuCtxRecordEvent too
cev = check(cu.cuEventCreate(0))
check(cu.cuCtxRecordEvent(ctx, cev))
time.sleep(0.02)
require(cu.cuEventQuery(cev)[0] == E.CUDA_ERROR_NOT_READY, "context event waits for every stream")
gate6.set()
check(cu.cuEventSynchronize(cev))

# --- stream attributes and destroy --------------------------------------------------------------
A = cu.CUstreamAttrID
v = cu.CUstreamAttrValue()
v.syncPolicy = cu.CUsynchronizationPolicy.CU_SYNC_POLICY_BLOCKING_SYNC
check(cu.cuStreamSetAttribute(s1, A.CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, v))
got = check(cu.cuStreamGetAttribute(s1, A.CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY))
require(got.syncPolicy == cu.CUsynchronizationPolicy.CU_SYNC_POLICY_BLOCKING_SYNC, "sync policy attribute")
gate5 = threading.Event()
check(cu.cuLaunchHostFunc(s3, wait_for(gate5), 0))
check(cu.cuLaunchHostFunc(s3, note("after destroy"), 0))
check(cu.cuStreamDestroy(s3))  # returns at once; queued work still runs
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuStreamQuery(s3), "destroyed stream")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuStreamDestroy(s3), "double destroy")
gate5.set()
check(cu.cuCtxSynchronize())
require(order[-1] == "after destroy", "work queued before destroy completes")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuStreamDestroy(0), "the NULL stream cannot be destroyed")

data = digest(out)
del out
for s in (s1, s2):
    check(cu.cuStreamDestroy(s))
check(cu.cuMemFreeHost(pinned))
check(cu.cuMemFreeHost(flag))
check(cu.cuMemFree(d))
result(order=order, data=data)
