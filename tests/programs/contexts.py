"""Primary and created contexts: retain/release/reset, the context stack,
limits, cache configuration, destruction seen from another thread."""
import threading

from cuda.bindings import driver as cu

from simcommon import check, expect, require, result

E = cu.CUresult
check(cu.cuInit(0))
dev = check(cu.cuDeviceGet(0))

# No context yet: work needs one.
require(int(check(cu.cuCtxGetCurrent())) == 0, "no current context at start")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuMemAlloc(64), "alloc without context")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxSynchronize(), "sync without context")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuStreamCreate(0), "stream without context")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxPopCurrent(), "pop empty stack")

# Primary context: inactive until retained; one handle for its whole life.
flags, active = check(cu.cuDevicePrimaryCtxGetState(dev))
require(active == 0, "primary inactive before retain")
check(cu.cuDevicePrimaryCtxSetFlags(dev, cu.CUctx_flags.CU_CTX_SCHED_BLOCKING_SYNC))
p1 = check(cu.cuDevicePrimaryCtxRetain(dev))
p2 = check(cu.cuDevicePrimaryCtxRetain(dev))
require(int(p1) == int(p2), "primary context handle is stable")
flags, active = check(cu.cuDevicePrimaryCtxGetState(dev))
require(active == 1 and flags == cu.CUctx_flags.CU_CTX_SCHED_BLOCKING_SYNC, f"state {flags} {active}")
check(cu.cuCtxSetCurrent(p1))
require(int(check(cu.cuCtxGetDevice())) == int(dev), "cuCtxGetDevice")
ctx_flags = check(cu.cuCtxGetFlags())
require(ctx_flags & cu.CUctx_flags.CU_CTX_SCHED_BLOCKING_SYNC, f"primary flags {ctx_flags}")
id1 = check(cu.cuCtxGetId(p1))
require(check(cu.cuCtxGetApiVersion(p1)) == 3020, "api version")

# Limits and configuration.
LIM = cu.CUlimit
check(cu.cuCtxSetLimit(LIM.CU_LIMIT_STACK_SIZE, 4096))
require(check(cu.cuCtxGetLimit(LIM.CU_LIMIT_STACK_SIZE)) == 4096, "stack limit")
check(cu.cuCtxSetLimit(LIM.CU_LIMIT_MALLOC_HEAP_SIZE, 64 << 20))
require(check(cu.cuCtxGetLimit(LIM.CU_LIMIT_MALLOC_HEAP_SIZE)) == 64 << 20, "heap limit")
check(cu.cuCtxSetLimit(LIM.CU_LIMIT_PRINTF_FIFO_SIZE, 2 << 20))
require(check(cu.cuCtxGetLimit(LIM.CU_LIMIT_PRINTF_FIFO_SIZE)) == 2 << 20, "printf fifo")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuCtxSetLimit(LIM.CU_LIMIT_STACK_SIZE, 1 << 30), "absurd stack")
check(cu.cuCtxSetCacheConfig(cu.CUfunc_cache.CU_FUNC_CACHE_PREFER_SHARED))
require(check(cu.cuCtxGetCacheConfig()) == cu.CUfunc_cache.CU_FUNC_CACHE_PREFER_SHARED, "cache config")
least, greatest = check(cu.cuCtxGetStreamPriorityRange())
require((least, greatest) == (0, -5), f"priority range {least} {greatest}")

# Created contexts: pushed on creation, a stack per thread.
params = cu.CUctxCreateParams()
c1 = check(cu.cuCtxCreate(params, 0, dev))
require(int(check(cu.cuCtxGetCurrent())) == int(c1), "created context is current")
require(check(cu.cuCtxGetId(c1)) != id1, "distinct context ids")
c2 = check(cu.cuCtxCreate(params, 0, dev))
require(int(check(cu.cuCtxPopCurrent())) == int(c2), "pop returns the top")
require(int(check(cu.cuCtxGetCurrent())) == int(c1), "then the one below")
check(cu.cuCtxPushCurrent(c2))
buf = check(cu.cuMemAlloc(1024))
ptr_ctx = check(cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_CONTEXT, buf))
require(int(ptr_ctx) == int(c2), "allocation belongs to the current context")
check(cu.cuCtxDestroy(c2))  # destroys its allocation and pops it
require(int(check(cu.cuCtxGetCurrent())) == int(c1), "destroyed context popped")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuPointerGetAttribute(cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_CONTEXT, buf),
       "allocation went with its context")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxDestroy(c2), "double destroy")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxPushCurrent(c2), "push destroyed")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxDestroy(p1), "primary contexts are not destroyed with cuCtxDestroy")
bad = cu.CUcontext(0xDEAD0000)
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxPushCurrent(bad), "random handle")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxGetId(bad), "random handle id")

# A context destroyed while current to another thread: that thread sees CONTEXT_IS_DESTROYED.
seen = {}
ready, go, done = threading.Event(), threading.Event(), threading.Event()


def other():
    check(cu.cuCtxSetCurrent(c1))
    seen["before"] = cu.cuMemAlloc(64)[0]
    ready.set()
    go.wait()
    seen["after"] = cu.cuMemAlloc(64)[0]
    seen["sync"] = cu.cuCtxSynchronize()[0]
    done.set()


t = threading.Thread(target=other)
t.start()
ready.wait()
check(cu.cuCtxDestroy(c1))
go.set()
t.join()
require(seen["before"] == E.CUDA_SUCCESS, "alloc before destroy")
require(seen["after"] == E.CUDA_ERROR_CONTEXT_IS_DESTROYED, f"after destroy: {seen['after']}")
require(seen["sync"] == E.CUDA_ERROR_CONTEXT_IS_DESTROYED, f"sync after destroy: {seen['sync']}")

# Back to the primary context.  Reset keeps the handle but drops its resources.
check(cu.cuCtxSetCurrent(p1))
keep = check(cu.cuMemAlloc(4096))
check(cu.cuDevicePrimaryCtxReset(dev))
flags, active = check(cu.cuDevicePrimaryCtxGetState(dev))
require(active == 1 and flags == 0, f"reset clears flags, context stays active while retained: {flags} {active}")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemFree(keep), "reset freed the allocation")
require(check(cu.cuCtxGetId(p1)) != id1, "reset starts a new incarnation")
check(cu.cuDevicePrimaryCtxRelease(dev))
check(cu.cuDevicePrimaryCtxRelease(dev))
flags, active = check(cu.cuDevicePrimaryCtxGetState(dev))
require(active == 0, "released twice: inactive")
expect(E.CUDA_ERROR_CONTEXT_IS_DESTROYED, cu.cuMemAlloc(64), "inactive primary still current")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuDevicePrimaryCtxRelease(dev), "release below zero")
check(cu.cuDevicePrimaryCtxRetain(dev))
check(cu.cuMemFree(check(cu.cuMemAlloc(64))))  # the same handle works again once retained
# cuDevicePrimaryCtxSetFlags (v2) is allowed while active.
check(cu.cuDevicePrimaryCtxSetFlags(dev, cu.CUctx_flags.CU_CTX_SCHED_SPIN))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuDevicePrimaryCtxSetFlags(dev, 0x3), "SPIN|YIELD is not a scheduling mode")
check(cu.cuCtxSynchronize())

result(ok=True, priority_range=[least, greatest])
