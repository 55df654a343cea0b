// Node parameter records as they arrive from the shim (wire/graph.h), turned
// into the backend's structures with every handle translated and every
// address checked; and the way back for the getters.
#pragma once
#include <vector>

#include "client.h"

namespace sing::proxy {

// A kernel node's parameters: the packed argument buffer is passed to the
// backend as `extra`, as launches do (custom_launch.cpp); the backend copies
// it when it makes or updates the node.
struct KernelNode {
  CUDA_KERNEL_NODE_PARAMS params{};
  std::vector<uint8_t> args;
  size_t args_size = 0;
  void* extra[5] = {};
};

CUresult decode_kernel_node(Call& c, KernelNode* k);
CUresult decode_memset_node(Call& c, CUDA_MEMSET_NODE_PARAMS* p, CUcontext* ctx);  // ctx null: none in the record
CUresult decode_memcpy_node(Call& c, CUDA_MEMCPY3D* p, CUcontext* ctx);
CUresult decode_host_node(Call& c, CUDA_HOST_NODE_PARAMS* p);

// Getters: the backend's view of a node, as the app sees it.
CUresult encode_kernel_node(Call& c, const CUDA_KERNEL_NODE_PARAMS& p);

// The packed argument buffer of a kernel node, laid out as the function's
// parameters (what the shim packs and the proxy hands over as `extra`).
std::vector<uint8_t> kernel_args(const CUDA_KERNEL_NODE_PARAMS& p);
CUresult encode_host_node(Call& c, const CUDA_HOST_NODE_PARAMS& p);

}  // namespace sing::proxy
