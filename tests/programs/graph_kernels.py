"""Graphs with kernels: kernel nodes, per-launch parameter updates,
capture of a training-step-like sequence across two streams, re-capture
applied with cuGraphExecUpdate."""
import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, init, load_module, nvrtc_compile, require, result

SOURCE = r"""
extern "C" __global__ void axpb(float* y, const float* x, float a, float b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + b;
}
extern "C" __global__ void add(float* y, const float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += x[i];
}
"""
dev, ctx = init()
mod = load_module(nvrtc_compile(SOURCE))
axpb = check(cu.cuModuleGetFunction(mod, b"axpb"))
add = check(cu.cuModuleGetFunction(mod, b"add"))
n = 4096
x = np.linspace(-1, 1, n, dtype=np.float32)
dx, dy, dz = (check(cu.cuMemAlloc(4 * n)) for _ in range(3))
check(cu.cuMemcpyHtoD(dx, x, x.nbytes))
check(cu.cuCtxSynchronize())  # a pageable HtoD may return before the device has it; `s` is non-blocking
s = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))


class Args:
    """Keeps argument storage alive and hands out a kernelParams array."""

    def __init__(self, *vals):
        self.vals = [np.array([v[1]], dtype=v[0]) for v in vals]
        self.ptrs = np.array([v.ctypes.data for v in self.vals], dtype=np.uint64)

    @property
    def ptr(self):
        return self.ptrs.ctypes.data


def knode(f, args):
    p = cu.CUDA_KERNEL_NODE_PARAMS()
    p.func = f
    p.gridDimX, p.gridDimY, p.gridDimZ = n // 256, 1, 1
    p.blockDimX, p.blockDimY, p.blockDimZ = 256, 1, 1
    p.sharedMemBytes = 0
    p.kernelParams = args.ptr
    return p


# Explicit: y = 2x + 1 ; z = 3x - 1 ; y += z
g = check(cu.cuGraphCreate(0))
a1 = Args((np.uint64, int(dy)), (np.uint64, int(dx)), (np.float32, 2.0), (np.float32, 1.0), (np.int32, n))
a2 = Args((np.uint64, int(dz)), (np.uint64, int(dx)), (np.float32, 3.0), (np.float32, -1.0), (np.int32, n))
a3 = Args((np.uint64, int(dy)), (np.uint64, int(dz)), (np.int32, n))
n1 = check(cu.cuGraphAddKernelNode(g, None, 0, knode(axpb, a1)))
n2 = check(cu.cuGraphAddKernelNode(g, None, 0, knode(axpb, a2)))
n3 = check(cu.cuGraphAddKernelNode(g, [n1, n2], 2, knode(add, a3)))
a1.vals[2][0] = 100.0  # parameters are copied when the node is made
x1 = check(cu.cuGraphInstantiate(g, 0))
check(cu.cuGraphLaunch(x1, s))
y = np.empty(n, np.float32)
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(y, dy, y.nbytes))
want = (2 * x.astype(np.float64) + 1) + (3 * x.astype(np.float64) - 1)
require(np.allclose(y, want, atol=1e-5), "kernel graph")
A = cu.CUkernelNodeAttrID
coop = check(cu.cuGraphKernelNodeGetAttribute(n1, A.CU_LAUNCH_ATTRIBUTE_COOPERATIVE))
require(coop.cooperative == 0, "not cooperative by default")
v = cu.CUkernelNodeAttrValue()
v.cooperative = 1
check(cu.cuGraphKernelNodeSetAttribute(n1, A.CU_LAUNCH_ATTRIBUTE_COOPERATIVE, v))
require(check(cu.cuGraphKernelNodeGetAttribute(n1, A.CU_LAUNCH_ATTRIBUTE_COOPERATIVE)).cooperative == 1, "set")
check(cu.cuGraphKernelNodeCopyAttributes(n2, n1))
require(check(cu.cuGraphKernelNodeGetAttribute(n2, A.CU_LAUNCH_ATTRIBUTE_COOPERATIVE)).cooperative == 1, "copied")
v2 = cu.CUkernelNodeAttrValue()
v2.clusterDim.x, v2.clusterDim.y, v2.clusterDim.z = 2, 1, 1
err = cu.cuGraphKernelNodeSetAttribute(n1, A.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION, v2)[0]
require(err == cu.CUresult.CUDA_ERROR_NOT_SUPPORTED, f"clusters: {err}")
got = check(cu.cuGraphKernelNodeGetParams(n1))
require(int(got.func) == int(axpb) and got.gridDimX == n // 256, "kernel node parameters read back")

# Per-executable update of one kernel node: a = 5.
a1.vals[2][0] = 5.0
check(cu.cuGraphExecKernelNodeSetParams(x1, n1, knode(axpb, a1)))
check(cu.cuGraphLaunch(x1, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(y, dy, y.nbytes))
want = (5 * x.astype(np.float64) + 1) + (3 * x.astype(np.float64) - 1)
require(np.allclose(y, want, atol=1e-5), "updated kernel node")
explicit = digest(y)


# Capture across two streams, then re-capture with other scalars and update the executable.
def capture(a, b):
    s2 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
    fork, join = check(cu.cuEventCreate(0)), check(cu.cuEventCreate(0))
    check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL))
    check(cu.cuEventRecord(fork, s))
    check(cu.cuStreamWaitEvent(s2, fork, 0))
    p1 = Args((np.uint64, int(dy)), (np.uint64, int(dx)), (np.float32, a), (np.float32, 0.0), (np.int32, n))
    p2 = Args((np.uint64, int(dz)), (np.uint64, int(dx)), (np.float32, b), (np.float32, 0.0), (np.int32, n))
    check(cu.cuLaunchKernel(axpb, n // 256, 1, 1, 256, 1, 1, 0, s, p1.ptr, 0))
    check(cu.cuLaunchKernel(axpb, n // 256, 1, 1, 256, 1, 1, 0, s2, p2.ptr, 0))
    check(cu.cuEventRecord(join, s2))
    check(cu.cuStreamWaitEvent(s, join, 0))
    p3 = Args((np.uint64, int(dy)), (np.uint64, int(dz)), (np.int32, n))
    check(cu.cuLaunchKernel(add, n // 256, 1, 1, 256, 1, 1, 0, s, p3.ptr, 0))
    return check(cu.cuStreamEndCapture(s))


gc = capture(1.0, 2.0)
xc = check(cu.cuGraphInstantiate(gc, 0))
for _ in range(2):
    check(cu.cuGraphLaunch(xc, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(y, dy, y.nbytes))
require(np.allclose(y, 3 * x, atol=1e-5), "captured graph")
gc2 = capture(4.0, -1.0)
info = check(cu.cuGraphExecUpdate(xc, gc2))
require(info.result == cu.CUgraphExecUpdateResult.CU_GRAPH_EXEC_UPDATE_SUCCESS, "re-capture applies")
check(cu.cuGraphLaunch(xc, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(y, dy, y.nbytes))
require(np.allclose(y, (4 - 1) * x, atol=1e-5), "updated executable runs the new scalars")
# a third capture with different scalars proves the update really took effect
gc3 = capture(10.0, 1.0)
check(cu.cuGraphExecUpdate(xc, gc3))
check(cu.cuGraphLaunch(xc, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(y, dy, y.nbytes))
require(np.allclose(y, 11 * x, atol=1e-4), "second update")
for h in (x1, xc):
    check(cu.cuGraphExecDestroy(h))
for h in (g, gc, gc2, gc3):
    check(cu.cuGraphDestroy(h))
result(explicit=explicit, captured=digest(y))
