"""Error reporting: names and strings for every CUresult, and the codes a
driver returns for random handles, destroyed objects and unsupported calls."""
from cuda.bindings import driver as cu

from simcommon import check, expect, init, require, result

E = cu.CUresult

# Names and strings need no cuInit.
names = {}
for code in E:
    rc, nm = cu.cuGetErrorName(code)
    require(rc == E.CUDA_SUCCESS and nm.decode() == code.name, f"name of {code}: {nm}")
    rc, st = cu.cuGetErrorString(code)
    require(rc == E.CUDA_SUCCESS and st and len(st) > 3, f"string of {code}")
    names[code.value] = st.decode()
require(names[0] == "no error" and names[1] == "invalid argument" and names[2] == "out of memory", "known strings")
require(names[700] == "an illegal memory access was encountered", "illegal address string")
require(names[719] == "unspecified launch failure", "launch failure string")

dev, ctx = init()
BAD = 0xDEADBEE0  # never a live object; must not be dereferenced

expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuStreamSynchronize(cu.CUstream(BAD)), "stream")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuStreamGetPriority(cu.CUstream(BAD)), "stream getter")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventRecord(cu.CUevent(BAD), 0), "event")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventSynchronize(cu.CUevent(BAD)), "event sync")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuModuleGetFunction(cu.CUmodule(BAD), b"k"), "module")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuModuleUnload(cu.CUmodule(BAD)), "module unload")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuFuncGetAttribute(cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_NUM_REGS,
                                                          cu.CUfunction(BAD)), "function")
expect(E.CUDA_ERROR_INVALID_HANDLE,
       cu.cuLaunchKernel(cu.CUfunction(BAD), 1, 1, 1, 1, 1, 1, 0, 0, 0, 0), "launch of a random function")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuLaunchKernel(None, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0), "launch of NULL")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuLibraryGetKernel(cu.CUlibrary(BAD), b"k"), "library")
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuKernelGetFunction(cu.CUkernel(BAD)), "kernel")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphLaunch(cu.CUgraphExec(BAD), 0), "graph exec")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphGetNodes(cu.CUgraph(BAD), 0), "graph")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphNodeGetType(cu.CUgraphNode(BAD)), "graph node")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemPoolTrimTo(cu.CUmemoryPool(BAD), 0), "memory pool")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuMemRelease(BAD), "allocation handle")
expect(E.CUDA_ERROR_INVALID_CONTEXT, cu.cuCtxSetCurrent(cu.CUcontext(BAD)), "context")

# Destroyed objects are as unknown as random ones.
s = check(cu.cuStreamCreate(0))
check(cu.cuStreamDestroy(s))
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuMemsetD8Async(check(cu.cuMemAlloc(16)), 0, 16, s), "destroyed stream")
ev = check(cu.cuEventCreate(0))
check(cu.cuEventDestroy(ev))
expect(E.CUDA_ERROR_INVALID_HANDLE, cu.cuEventRecord(ev, 0), "destroyed event")

# Out of scope by design (DESIGN.md section 8) and legacy/unsimulated features.
err, table = cu.cuGetExportTable(cu.CUuuid())
require(err == E.CUDA_ERROR_NOT_SUPPORTED, f"export tables: {err}")
desc = cu.CUDA_ARRAY_DESCRIPTOR()
desc.Width, desc.Height, desc.NumChannels = 16, 16, 1
desc.Format = cu.CUarray_format.CU_AD_FORMAT_FLOAT
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuArrayCreate(desc), "CUDA arrays are not simulated")
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuIpcGetMemHandle(check(cu.cuMemAlloc(64))), "legacy IPC")
check(cu.cuProfilerStart())
check(cu.cuProfilerStop())
result(codes=len(names))
