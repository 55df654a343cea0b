"""Cooperative launches (grid-wide synchronisation), their size limit, and
cuLaunchKernelEx with launch attributes."""
import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, cuda_include_flags, digest, expect, init, load_module, nvrtc_compile, require, result

E = cu.CUresult
A = cu.CUlaunchAttributeID
SOURCE = r"""
#include <cooperative_groups.h>
namespace cg = cooperative_groups;
// Every block writes its id, the grid synchronises, then each block reads its neighbour's.
extern "C" __global__ void rotate(int* slots, int* out) {
  cg::grid_group grid = cg::this_grid();
  if (threadIdx.x == 0) slots[blockIdx.x] = blockIdx.x * 10;
  grid.sync();
  if (threadIdx.x == 0) out[blockIdx.x] = slots[(blockIdx.x + 1) % gridDim.x];
}
extern "C" __global__ void iota(int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = blockIdx.x * blockDim.x + threadIdx.x; }
"""
dev, ctx = init()
mod = load_module(nvrtc_compile(SOURCE, extra=cuda_include_flags()))
rot = check(cu.cuModuleGetFunction(mod, b"rotate"))
iota = check(cu.cuModuleGetFunction(mod, b"iota"))

per_sm = check(cu.cuOccupancyMaxActiveBlocksPerMultiprocessor(rot, 128, 0))
limit = per_sm * 132
require(limit >= 132, f"co-resident blocks {limit}")
blocks = 264 if limit >= 264 else limit
slots, out = check(cu.cuMemAlloc(4 * limit)), check(cu.cuMemAlloc(4 * limit))
vals = [np.array([int(slots)], np.uint64), np.array([int(out)], np.uint64)]
params = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
check(cu.cuLaunchCooperativeKernel(rot, blocks, 1, 1, 128, 1, 1, 0, 0, params.ctypes.data))
res = np.empty(blocks, np.int32)
check(cu.cuMemcpyDtoH(res, out, res.nbytes))
require(np.array_equal(res, ((np.arange(blocks) + 1) % blocks) * 10), "grid-wide sync")
expect(E.CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE,
       cu.cuLaunchCooperativeKernel(rot, limit + 1, 1, 1, 128, 1, 1, 0, 0, params.ctypes.data), "one block too many")

# cuLaunchKernelEx: the cooperative attribute, a trivial cluster, a priority.
cfg = cu.CUlaunchConfig()
cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ = blocks, 1, 1
cfg.blockDimX, cfg.blockDimY, cfg.blockDimZ = 128, 1, 1
cfg.sharedMemBytes = 0
cfg.hStream = 0
attrs = [cu.CUlaunchAttribute() for _ in range(3)]
attrs[0].id = A.CU_LAUNCH_ATTRIBUTE_COOPERATIVE
attrs[0].value.cooperative = 1
attrs[1].id = A.CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
attrs[1].value.clusterDim.x = attrs[1].value.clusterDim.y = attrs[1].value.clusterDim.z = 1
attrs[2].id = A.CU_LAUNCH_ATTRIBUTE_PRIORITY
attrs[2].value.priority = -2
cfg.attrs = attrs
cfg.numAttrs = 3
check(cu.cuMemsetD32(out, 0, limit))
check(cu.cuLaunchKernelEx(cfg, rot, params.ctypes.data, 0))
check(cu.cuMemcpyDtoH(res, out, res.nbytes))
require(np.array_equal(res, ((np.arange(blocks) + 1) % blocks) * 10), "cooperative through cuLaunchKernelEx")
attrs[1].value.clusterDim.x = 2
cfg.attrs = attrs
expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuLaunchKernelEx(cfg, rot, params.ctypes.data, 0),
       "thread-block clusters are not simulated")

# A launch-completion event attribute: recorded when the kernel is done.
ev = check(cu.cuEventCreate(0))
one = cu.CUlaunchAttribute()
one.id = A.CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT
one.value.launchCompletionEvent.event = ev
one.value.launchCompletionEvent.flags = 0
cfg2 = cu.CUlaunchConfig()
cfg2.gridDimX, cfg2.gridDimY, cfg2.gridDimZ = 4, 1, 1
cfg2.blockDimX, cfg2.blockDimY, cfg2.blockDimZ = 64, 1, 1
cfg2.hStream = 0
cfg2.attrs = [one]
cfg2.numAttrs = 1
iv = [np.array([int(out)], np.uint64)]
ip = np.array([v.ctypes.data for v in iv], dtype=np.uint64)
check(cu.cuLaunchKernelEx(cfg2, iota, ip.ctypes.data, 0))
check(cu.cuEventSynchronize(ev))
r2 = np.empty(256, np.int32)
check(cu.cuMemcpyDtoH(r2, out, r2.nbytes))
require(np.array_equal(r2, np.arange(256)), "kernel done when its completion event is")
result(rotate=digest(res), blocks=blocks)
