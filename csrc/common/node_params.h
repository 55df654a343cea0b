// Conversions between the versions of graph node parameter structs that the
// driver API accepts: one place for the shim (which takes the generic node
// API apart) and the simulated driver (which implements it).
#pragma once
#include <cuda.h>

namespace sing {

// The kernel node parameters of the generic node API (v3) as the struct the kernel-node entry points take.
inline CUDA_KERNEL_NODE_PARAMS kernel_params_v2(const CUDA_KERNEL_NODE_PARAMS_v3& k) {
  CUDA_KERNEL_NODE_PARAMS p{};
  p.func = k.func;
  p.gridDimX = k.gridDimX, p.gridDimY = k.gridDimY, p.gridDimZ = k.gridDimZ;
  p.blockDimX = k.blockDimX, p.blockDimY = k.blockDimY, p.blockDimZ = k.blockDimZ;
  p.sharedMemBytes = k.sharedMemBytes;
  p.kernelParams = k.kernelParams;
  p.extra = k.extra;
  p.kern = k.kern;
  p.ctx = k.ctx;
  return p;
}

// The v1 kernel node parameters (no kernel handle, no context) as the current struct.
inline CUDA_KERNEL_NODE_PARAMS kernel_params_from_v1(const CUDA_KERNEL_NODE_PARAMS_v1& v1) {
  CUDA_KERNEL_NODE_PARAMS p{};
  p.func = v1.func;
  p.gridDimX = v1.gridDimX, p.gridDimY = v1.gridDimY, p.gridDimZ = v1.gridDimZ;
  p.blockDimX = v1.blockDimX, p.blockDimY = v1.blockDimY, p.blockDimZ = v1.blockDimZ;
  p.sharedMemBytes = v1.sharedMemBytes;
  p.kernelParams = v1.kernelParams;
  p.extra = v1.extra;
  return p;
}

// The v2 memset node parameters (which add a context) as the v1 struct.
inline CUDA_MEMSET_NODE_PARAMS memset_params_v1(const CUDA_MEMSET_NODE_PARAMS_v2& m) {
  CUDA_MEMSET_NODE_PARAMS p{};
  p.dst = m.dst;
  p.pitch = m.pitch;
  p.value = m.value;
  p.elementSize = m.elementSize;
  p.width = m.width;
  p.height = m.height;
  return p;
}

}  // namespace sing
