#include "graph_node_params.h"

#include <cstring>

#include "graph_util.h"
#include "hostfn.h"
#include "wire/graph.h"

namespace sing::proxy {

namespace custom {
CUresult function_handle(Client& client, uint64_t vid, CUfunction* f, bool* is_kernel);
}

CUresult decode_kernel_node(Call& c, KernelNode* k) {
  auto q = c.in.get<wire::KernelNodeParams>();
  if (!c.in.ok() || q.param_bytes > 32768) return CUDA_ERROR_INVALID_VALUE;
  const uint8_t* args = q.has_params ? c.in.take(q.param_bytes) : nullptr;
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  CUfunction f;
  bool is_kernel;
  CUresult r = custom::function_handle(c.client, q.function, &f, &is_kernel);
  if (r != CUDA_SUCCESS) return r;
  CUDA_KERNEL_NODE_PARAMS& p = k->params;
  p = CUDA_KERNEL_NODE_PARAMS{};
  if (is_kernel) {
    p.kern = reinterpret_cast<CUkernel>(f);
    if ((r = to_real(c.client, reinterpret_cast<CUcontext>(q.ctx), &p.ctx)) != CUDA_SUCCESS) return r;
  } else {
    p.func = f;
  }
  p.gridDimX = q.grid[0], p.gridDimY = q.grid[1], p.gridDimZ = q.grid[2];
  p.blockDimX = q.block[0], p.blockDimY = q.block[1], p.blockDimZ = q.block[2];
  p.sharedMemBytes = q.shared_bytes;
  if (q.has_params) {
    k->args.assign(args, args + q.param_bytes);
    k->args_size = q.param_bytes;
    k->extra[0] = CU_LAUNCH_PARAM_BUFFER_POINTER;
    k->extra[1] = k->args.data();
    k->extra[2] = CU_LAUNCH_PARAM_BUFFER_SIZE;
    k->extra[3] = &k->args_size;
    k->extra[4] = CU_LAUNCH_PARAM_END;
    p.extra = k->extra;
  }
  return CUDA_SUCCESS;
}

CUresult decode_memset_node(Call& c, CUDA_MEMSET_NODE_PARAMS* p, CUcontext* ctx) {
  *p = c.in.get<CUDA_MEMSET_NODE_PARAMS>();
  CUresult r = CUDA_SUCCESS;
  if (ctx) r = decode_id(c, ctx);
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  return check_memset_node(c.client, *p);
}

CUresult decode_memcpy_node(Call& c, CUDA_MEMCPY3D* p, CUcontext* ctx) {
  *p = c.in.get<CUDA_MEMCPY3D>();
  CUresult r = CUDA_SUCCESS;
  if (ctx) r = decode_id(c, ctx);
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  // Array handles would be the app's ids: arrays are not forwarded at all.
  p->srcArray = p->dstArray = nullptr;
  p->reserved0 = p->reserved1 = nullptr;
  return check_memcpy_node(c.client, *p);
}

CUresult decode_host_node(Call& c, CUDA_HOST_NODE_PARAMS* p) {
  auto q = c.in.get<wire::HostNodeParams>();
  if (!c.in.ok() || !q.fn) return CUDA_ERROR_INVALID_VALUE;
  // The node runs at every launch of the graph: a record for the client's
  // lifetime, shared by the nodes with the same function and argument.
  HostRecord* rec = persistent_host_record(c.client, q.fn, q.user_data, 0, wire::kHostFn);
  if (!rec) return CUDA_ERROR_OUT_OF_MEMORY;
  p->fn = host_trampoline();
  p->userData = rec;
  return CUDA_SUCCESS;
}

namespace {
CUresult param_layout(CUfunction f, std::vector<std::pair<size_t, size_t>>* out) {
  for (size_t i = 0; i < 4096; ++i) {
    size_t off = 0, size = 0;
    if (BACKEND(cuFuncGetParamInfo)(f, i, &off, &size) != CUDA_SUCCESS) break;
    out->emplace_back(off, size);
  }
  return CUDA_SUCCESS;
}
}  // namespace

std::vector<uint8_t> kernel_args(const CUDA_KERNEL_NODE_PARAMS& p) {
  // The backend names the function it will run; a node made from a CUkernel
  // reports the function of the current context.
  CUfunction f = p.func ? p.func : reinterpret_cast<CUfunction>(p.kern);
  std::vector<std::pair<size_t, size_t>> layout;
  param_layout(f, &layout);
  size_t bytes = 0;
  for (auto& [off, size] : layout) bytes = std::max(bytes, off + size);
  std::vector<uint8_t> args(bytes);
  if (p.kernelParams) {
    for (size_t i = 0; i < layout.size(); ++i)
      if (p.kernelParams[i]) std::memcpy(args.data() + layout[i].first, p.kernelParams[i], layout[i].second);
  } else if (p.extra) {
    const void* buf = nullptr;
    for (void* const* e = p.extra; *e != CU_LAUNCH_PARAM_END; e += 2)
      if (e[0] == CU_LAUNCH_PARAM_BUFFER_POINTER) buf = e[1];
    if (buf && bytes) std::memcpy(args.data(), buf, bytes);
  }
  return args;
}

CUresult encode_kernel_node(Call& c, const CUDA_KERNEL_NODE_PARAMS& p) {
  const std::vector<uint8_t> args = kernel_args(p);
  wire::KernelNodeParams q{};
  q.function = reinterpret_cast<uint64_t>(p.func ? to_app(c.client, p.func)
                                                 : reinterpret_cast<CUfunction>(to_app(c.client, p.kern)));
  q.ctx = reinterpret_cast<uint64_t>(to_app(c.client, p.ctx));
  q.grid[0] = p.gridDimX, q.grid[1] = p.gridDimY, q.grid[2] = p.gridDimZ;
  q.block[0] = p.blockDimX, q.block[1] = p.blockDimY, q.block[2] = p.blockDimZ;
  q.shared_bytes = p.sharedMemBytes;
  q.param_bytes = uint32_t(args.size());
  q.has_params = !args.empty();  // every parameter has a size: no parameters is no bytes
  c.out.put(q);
  if (q.has_params) c.out.put(args.data(), uint32_t(args.size()));
  return CUDA_SUCCESS;
}

CUresult encode_host_node(Call& c, const CUDA_HOST_NODE_PARAMS& p) {
  wire::HostNodeParams q{};
  if (!host_record_lookup(c.client, p.fn, p.userData, &q.fn, &q.user_data)) return CUDA_ERROR_INVALID_VALUE;
  c.out.put(q);
  return CUDA_SUCCESS;
}

}  // namespace sing::proxy
