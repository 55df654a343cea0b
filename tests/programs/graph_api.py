"""Graph API corners the other graph programs do not reach: node parameters
read back (kernel arguments, host functions, memcpy shapes), edges with edge
data, long dependency lists (more ids than one proxy answer holds),
dependencies added and removed, node destruction, instantiation with
parameters, capture info with dependencies, capture into an existing graph,
rewriting a capture's dependencies, host functions captured and relaunched,
host nodes updated in an executable, graph memory attributes, and registered
host memory as a kernel node's argument."""
import ctypes

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, load_module, nvrtc_compile, require, result, watchdog

E = cu.CUresult
T = cu.CUgraphNodeType
dev, ctx = init()
watchdog(120)
HOSTFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
log = []
keep = []


def hostfn(tag):
    f = HOSTFN(lambda data: log.append((tag, data or 0)))
    keep.append(f)
    return ctypes.cast(f, ctypes.c_void_p).value


SOURCE = r"""
extern "C" __global__ void scale(int* y, const int* x, int k, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = k * x[i];
}
"""
mod = load_module(nvrtc_compile(SOURCE))
scale = check(cu.cuModuleGetFunction(mod, b"scale"))
n = 1024
s = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
dx, dy = check(cu.cuMemAlloc(4 * n)), check(cu.cuMemAlloc(4 * n))
x = np.arange(n, dtype=np.int32)
check(cu.cuMemcpyHtoD(dx, x, x.nbytes))
check(cu.cuCtxSynchronize())  # a pageable HtoD may return before the device has it; `s` is non-blocking

# --- kernel node arguments read back, then changed on the graph -----------------------------
args = [np.array([int(dy)], np.uint64), np.array([int(dx)], np.uint64), np.array([3], np.int32),
        np.array([n], np.int32)]
ptrs = np.array([a.ctypes.data for a in args], np.uint64)
kp = cu.CUDA_KERNEL_NODE_PARAMS()
kp.func = scale
kp.gridDimX, kp.gridDimY, kp.gridDimZ = n // 128, 1, 1
kp.blockDimX, kp.blockDimY, kp.blockDimZ = 128, 1, 1
kp.kernelParams = ptrs.ctypes.data
g = check(cu.cuGraphCreate(0))
k = check(cu.cuGraphAddKernelNode(g, None, 0, kp))
back = check(cu.cuGraphKernelNodeGetParams(k))
kparams = ctypes.cast(int(back.kernelParams), ctypes.POINTER(ctypes.c_void_p))
got_k = ctypes.c_int32.from_address(kparams[2]).value
got_y = ctypes.c_uint64.from_address(kparams[0]).value
require(got_k == 3 and got_y == int(dy) and back.blockDimX == 128, f"kernel arguments read back: k={got_k}")
args[2][0] = 7
check(cu.cuGraphKernelNodeSetParams(k, kp))
require(ctypes.c_int32.from_address(
    ctypes.cast(int(check(cu.cuGraphKernelNodeGetParams(k)).kernelParams), ctypes.POINTER(ctypes.c_void_p))[2]).value
        == 7, "changed argument read back")

# --- host node parameters, edges with edge data, dependencies changed -----------------------
hp = cu.CUDA_HOST_NODE_PARAMS()
hp.fn = hostfn("node")
hp.userData = 1234
h = check(cu.cuGraphAddHostNode(g, [k], 1, hp))
hb = check(cu.cuGraphHostNodeGetParams(h))
require(int(hb.fn) == int(hp.fn) and int(hb.userData) == 1234, "host node parameters read back")
e1 = check(cu.cuGraphAddEmptyNode(g, None, 0))
check(cu.cuGraphAddDependencies(g, [e1], [h], None, 1))
frm, to, data, nedges = check(cu.cuGraphGetEdges(g, 4))
require(nedges == 2 and {int(t) for t in to[:2]} == {int(h)}, f"edges: {nedges}")
deps, _, ndeps = check(cu.cuGraphNodeGetDependencies(h, 4))
require(ndeps == 2 and {int(d) for d in deps[:2]} == {int(k), int(e1)}, "host node dependencies")
dependents, _, ndependents = check(cu.cuGraphNodeGetDependentNodes(k, 2))
require(ndependents == 1 and int(dependents[0]) == int(h), "kernel node dependents")
check(cu.cuGraphRemoveDependencies(g, [e1], [h], None, 1))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphRemoveDependencies(g, [e1], [h], None, 1), "edge removed twice")
check(cu.cuGraphDestroyNode(e1))
require(check(cu.cuGraphGetNodes(g))[1] == 2, "node destroyed")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphNodeGetType(e1), "destroyed node handle")

# --- instantiate with parameters, launch, update a host node in the executable ---------------
ip = cu.CUDA_GRAPH_INSTANTIATE_PARAMS()
ip.flags = 0
x1 = check(cu.cuGraphInstantiateWithParams(g, ip))
require(ip.result_out == cu.CUgraphInstantiateResult.CUDA_GRAPH_INSTANTIATE_SUCCESS, "instantiate verdict")
check(cu.cuGraphLaunch(x1, s))
hp2 = cu.CUDA_HOST_NODE_PARAMS()
hp2.fn = hostfn("updated")
hp2.userData = 99
check(cu.cuGraphExecHostNodeSetParams(x1, h, hp2))
check(cu.cuGraphLaunch(x1, s))
check(cu.cuStreamSynchronize(s))
require(log == [("node", 1234), ("updated", 99)], f"host node, then its update: {log}")
y = np.empty(n, np.int32)
check(cu.cuMemcpyDtoH(y, dy, y.nbytes))
require(np.array_equal(y, 7 * x), "kernel node ran")

# --- a long dependency list: more ids than one answer of the proxy carries --------------------
wide = check(cu.cuGraphCreate(0))
leaves = [check(cu.cuGraphAddEmptyNode(wide, None, 0)) for _ in range(12000)]
join = check(cu.cuGraphAddEmptyNode(wide, leaves, len(leaves)))
deps, _, ndeps = check(cu.cuGraphNodeGetDependencies(join, len(leaves) + 5))
require(ndeps == len(leaves) and [int(d) for d in deps[:ndeps]] == [int(v) for v in leaves],
        "every dependency back, in order")
require(all(int(d) == 0 for d in deps[ndeps:]), "entries past the count are null")
frm, to, data, nedges = check(cu.cuGraphGetEdges(wide, len(leaves)))
require(nedges == len(leaves) and all(int(t) == int(join) for t in to), "edges of the wide graph")
_, few = check(cu.cuGraphGetRootNodes(wide, 3))
require(few == len(leaves), "root count with a short array")
check(cu.cuGraphDestroy(wide))

# --- capture: info with dependencies, dependencies rewritten, host function replayed ----------
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
check(cu.cuMemsetD32Async(dy, 5, n, s))
# The driver's own entry point: cuda-python's wrapper frees its callback
# record after one run, so a captured host function of its could not be
# launched twice (on any driver).
_, raw_host_func, _ = cu.cuGetProcAddress(b"cuLaunchHostFunc", 13000, 0)
launch_host_func = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)(int(raw_host_func))
require(launch_host_func(int(s), hostfn("captured"), 7) == 0, "captured host function")
status, cid, cgraph, cdeps, _, ndeps = check(cu.cuStreamGetCaptureInfo(s))
require(status == cu.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_ACTIVE and ndeps == 1, "one dependency")
require(check(cu.cuGraphNodeGetType(cdeps[0])) == T.CU_GRAPH_NODE_TYPE_HOST, "the host function is the dependency")
side = check(cu.cuGraphAddEmptyNode(cgraph, None, 0))
check(cu.cuStreamUpdateCaptureDependencies(s, [side], None, 1,
                                           cu.CUstreamUpdateCaptureDependencies_flags.CU_STREAM_ADD_CAPTURE_DEPENDENCIES))
_, _, _, cdeps, _, ndeps = check(cu.cuStreamGetCaptureInfo(s))
require(ndeps == 2, "dependency added to the capture")
captured = check(cu.cuStreamEndCapture(s))
xc = check(cu.cuGraphInstantiate(captured, 0))
log.clear()
for _ in range(3):
    check(cu.cuGraphLaunch(xc, s))
check(cu.cuStreamSynchronize(s))
require(log == [("captured", 7)] * 3, f"captured host function ran at every launch: {log}")

# --- capture into an existing graph -----------------------------------------------------------
into = check(cu.cuGraphCreate(0))
root = check(cu.cuGraphAddEmptyNode(into, None, 0))
check(cu.cuStreamBeginCaptureToGraph(s, into, [root], [cu.CUgraphEdgeData()], 1,
                                     cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
check(cu.cuMemsetD32Async(dx, 9, n, s))
same = check(cu.cuStreamEndCapture(s))
require(int(same) == int(into) and check(cu.cuGraphGetNodes(into))[1] == 2, "captured into the graph")
deps, _, ndeps = check(cu.cuGraphNodeGetDependencies(check(cu.cuGraphGetNodes(into, 2))[0][1], 1))
require(ndeps == 1 and int(deps[0]) == int(root), "captured node after the given dependency")

# --- graph memory attributes follow allocation nodes -----------------------------------------
A = cu.CUgraphMem_attribute
before = int(check(cu.cuDeviceGetGraphMemAttribute(0, A.CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT)))
gm = check(cu.cuGraphCreate(0))
ap = cu.CUDA_MEM_ALLOC_NODE_PARAMS()
ap.poolProps.allocType = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
ap.poolProps.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
ap.poolProps.location.id = 0
ap.bytesize = 1 << 20
na = check(cu.cuGraphAddMemAllocNode(gm, None, 0, ap))
back = check(cu.cuGraphMemAllocNodeGetParams(na))
require(back.bytesize == 1 << 20 and int(back.dptr) == int(ap.dptr), "allocation node parameters")
nf = check(cu.cuGraphAddMemFreeNode(gm, [na], 1, back.dptr))
require(int(check(cu.cuGraphMemFreeNodeGetParams(nf))) == int(back.dptr), "free node parameters")
grown = int(check(cu.cuDeviceGetGraphMemAttribute(0, A.CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT)))
require(grown >= before + (1 << 20), "allocation node accounted")
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuGraphAddChildGraphNode(into, None, 0, gm), "memory nodes in a child graph")
check(cu.cuGraphDestroy(gm))
after = int(check(cu.cuDeviceGetGraphMemAttribute(0, A.CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT)))
require(after == before, f"graph memory returned with its graph: {before} -> {grown} -> {after}")

# --- a kernel node working on registered host memory ------------------------------------------
host_in = np.arange(n, dtype=np.int32) * 2
host_out = np.zeros(n, np.int32)
for arr in (host_in, host_out):
    check(cu.cuMemHostRegister(arr.ctypes.data, arr.nbytes, cu.CU_MEMHOSTREGISTER_DEVICEMAP))
flags = check(cu.cuMemHostGetFlags(host_in.ctypes.data))
require(flags & cu.CU_MEMHOSTALLOC_DEVICEMAP, f"registered flags {flags}")
rargs = [np.array([host_out.ctypes.data], np.uint64), np.array([host_in.ctypes.data], np.uint64),
         np.array([3], np.int32), np.array([n], np.int32)]
rptrs = np.array([a.ctypes.data for a in rargs], np.uint64)
kp.kernelParams = rptrs.ctypes.data
gr = check(cu.cuGraphCreate(0))
check(cu.cuGraphAddKernelNode(gr, None, 0, kp))
xr = check(cu.cuGraphInstantiate(gr, 0))
check(cu.cuGraphLaunch(xr, s))
check(cu.cuStreamSynchronize(s))
require(np.array_equal(host_out, 3 * host_in), "kernel node on registered memory")
host_in[:] = 1  # the app's writes after registration reach the device
check(cu.cuGraphLaunch(xr, s))
check(cu.cuStreamSynchronize(s))
require((host_out == 3).all(), "relaunch sees the app's new data")
for arr in (host_in, host_out):
    check(cu.cuMemHostUnregister(arr.ctypes.data))
host_in[:] = 4  # still the app's memory after unregistering
require((host_in == 4).all(), "unregistered memory stays usable")

for xh in (x1, xc, xr):
    check(cu.cuGraphExecDestroy(xh))
for gh in (g, captured, into, gr):
    check(cu.cuGraphDestroy(gh))
result(y=digest(y), out=digest(host_out))
