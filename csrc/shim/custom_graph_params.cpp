// Graph node parameters (get/set on a graph, set on an executable),
// instantiation with parameters, whole-executable update, graph memory
// attributes: the app's side.
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "callbacks.h"
#include "custom.h"
#include "functions.h"
#include "graph_util.h"
#include "node_params.h"
#include "wire/opcodes.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

auto node_head(CUgraphNode n) {
  return [n](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(n)); };
}
auto exec_head(CUgraphExec x, CUgraphNode n) {
  return [x, n](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(x));
    w.put<uint64_t>(reinterpret_cast<uint64_t>(n));
  };
}

// What a getter hands out by pointer (kernelParams, accessDescs) must stay
// valid after the call, as the driver's own copy does: one store per node,
// rewritten in place while the size stays, so earlier pointers keep working.
struct NodeStore {
  std::vector<uint8_t> bytes;
  std::vector<void*> ptrs;
  std::vector<CUmemAccessDesc> access;
};
std::mutex g_store_mu;
std::map<uint64_t, std::unique_ptr<NodeStore>>& stores() {
  static auto* m = new std::map<uint64_t, std::unique_ptr<NodeStore>>;  // immortal: pointers may outlive main()
  return *m;
}
NodeStore* store_of(CUgraphNode n) {
  auto& s = stores()[reinterpret_cast<uint64_t>(n)];
  if (!s) s = std::make_unique<NodeStore>();
  return s.get();
}

// --- kernel nodes ------------------------------------------------------

template <class Head>
CUresult set_kernel(uint16_t op, Head head, const CUDA_KERNEL_NODE_PARAMS* p) {
  KernelNodeParams kp;
  std::vector<uint8_t> buf;
  CUresult r = encode_kernel_node(p, &kp, &buf);
  if (r != CUDA_SUCCESS) return r;
  return sync_call(op, [&](Writer& w) {
           head(w);
           w.put(kp);
           if (kp.has_params) w.put(buf.data(), uint32_t(buf.size()));
         }).result;
}

CUresult get_kernel(uint16_t op, CUgraphNode n, CUDA_KERNEL_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(op, node_head(n));
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  auto kp = r.get<KernelNodeParams>();
  const uint8_t* bytes = kp.has_params ? r.take(kp.param_bytes) : nullptr;
  if (!r.ok() || (kp.has_params && !bytes)) return CUDA_ERROR_UNKNOWN;
  CUresult err;
  FunctionInfo* info = function_info(kp.function, &err);
  if (!info) return err;
  handle_seen(kp.function);
  if (kp.ctx) handle_seen(kp.ctx);
  *p = CUDA_KERNEL_NODE_PARAMS{};
  p->func = reinterpret_cast<CUfunction>(kp.function);
  p->gridDimX = kp.grid[0], p->gridDimY = kp.grid[1], p->gridDimZ = kp.grid[2];
  p->blockDimX = kp.block[0], p->blockDimY = kp.block[1], p->blockDimZ = kp.block[2];
  p->sharedMemBytes = kp.shared_bytes;
  p->ctx = reinterpret_cast<CUcontext>(kp.ctx);
  if (!kp.has_params) return CUDA_SUCCESS;
  if (kp.param_bytes != info->param_bytes) return CUDA_ERROR_UNKNOWN;
  std::lock_guard<std::mutex> lock(g_store_mu);
  NodeStore* s = store_of(n);
  if (s->bytes.size() != kp.param_bytes) {
    // Another function's layout: pointers into the old store cannot stay
    // valid for it anyway; the old store is kept alive, just not reused.
    auto& slot = stores()[reinterpret_cast<uint64_t>(n)];
    slot.release();  // deliberately leaked (see above)
    slot = std::make_unique<NodeStore>();
    s = slot.get();
    s->bytes.resize(kp.param_bytes);
    for (auto& [off, size] : info->params) s->ptrs.push_back(s->bytes.data() + off);
  }
  std::memcpy(s->bytes.data(), bytes, kp.param_bytes);
  p->kernelParams = s->ptrs.data();
  return CUDA_SUCCESS;
}

// --- host nodes --------------------------------------------------------

template <class Head>
CUresult set_host(uint16_t op, Head head, const CUDA_HOST_NODE_PARAMS* p) {
  if (!p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
  ensure_callback_thread();
  HostNodeParams hp{reinterpret_cast<uint64_t>(p->fn), reinterpret_cast<uint64_t>(p->userData)};
  return sync_call(op, [&](Writer& w) {
           head(w);
           w.put(hp);
         }).result;
}

template <class Head, class P>
CUresult set_with_ctx(uint16_t op, Head head, const P* p, CUcontext ctx) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(op, [&](Writer& w) {
           head(w);
           w.put(*p);
           w.put<uint64_t>(reinterpret_cast<uint64_t>(ctx));
         }).result;
}

template <class P>
CUresult get_plain(uint16_t op, CUgraphNode n, P* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(op, node_head(n));
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  P v = r.get<P>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *out = v;
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode n, CUDA_KERNEL_NODE_PARAMS* p) {
  return get_kernel(kOp_cuGraphKernelNodeGetParams_v2, n, p);
}
CUresult cuGraphKernelNodeGetParams(CUgraphNode n, CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2;
  CUresult r = get_kernel(kOp_cuGraphKernelNodeGetParams, n, &v2);
  if (r != CUDA_SUCCESS) return r;
  *p = CUDA_KERNEL_NODE_PARAMS_v1{};
  p->func = v2.func;
  p->gridDimX = v2.gridDimX, p->gridDimY = v2.gridDimY, p->gridDimZ = v2.gridDimZ;
  p->blockDimX = v2.blockDimX, p->blockDimY = v2.blockDimY, p->blockDimZ = v2.blockDimZ;
  p->sharedMemBytes = v2.sharedMemBytes;
  p->kernelParams = v2.kernelParams;
  return CUDA_SUCCESS;
}
CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode n, const CUDA_KERNEL_NODE_PARAMS* p) {
  return set_kernel(kOp_cuGraphKernelNodeSetParams_v2, node_head(n), p);
}
CUresult cuGraphKernelNodeSetParams(CUgraphNode n, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2 = sing::kernel_params_from_v1(*p);
  return set_kernel(kOp_cuGraphKernelNodeSetParams, node_head(n), &v2);
}
CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec x, CUgraphNode n, const CUDA_KERNEL_NODE_PARAMS* p) {
  return set_kernel(kOp_cuGraphExecKernelNodeSetParams_v2, exec_head(x, n), p);
}
CUresult cuGraphExecKernelNodeSetParams(CUgraphExec x, CUgraphNode n, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2 = sing::kernel_params_from_v1(*p);
  return set_kernel(kOp_cuGraphExecKernelNodeSetParams, exec_head(x, n), &v2);
}

CUresult cuGraphMemsetNodeGetParams(CUgraphNode n, CUDA_MEMSET_NODE_PARAMS* p) {
  return get_plain(kOp_cuGraphMemsetNodeGetParams, n, p);
}
CUresult cuGraphMemsetNodeSetParams(CUgraphNode n, const CUDA_MEMSET_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(kOp_cuGraphMemsetNodeSetParams, [&](Writer& w) {
           node_head(n)(w);
           w.put(*p);
         }).result;
}
CUresult cuGraphExecMemsetNodeSetParams(CUgraphExec x, CUgraphNode n, const CUDA_MEMSET_NODE_PARAMS* p,
                                        CUcontext ctx) {
  return set_with_ctx(kOp_cuGraphExecMemsetNodeSetParams, exec_head(x, n), p, ctx);
}

CUresult cuGraphMemcpyNodeGetParams(CUgraphNode n, CUDA_MEMCPY3D* p) {
  return get_plain(kOp_cuGraphMemcpyNodeGetParams, n, p);
}
CUresult cuGraphMemcpyNodeSetParams(CUgraphNode n, const CUDA_MEMCPY3D* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(kOp_cuGraphMemcpyNodeSetParams, [&](Writer& w) {
           node_head(n)(w);
           w.put(*p);
         }).result;
}
CUresult cuGraphExecMemcpyNodeSetParams(CUgraphExec x, CUgraphNode n, const CUDA_MEMCPY3D* p, CUcontext ctx) {
  return set_with_ctx(kOp_cuGraphExecMemcpyNodeSetParams, exec_head(x, n), p, ctx);
}

CUresult cuGraphHostNodeGetParams(CUgraphNode n, CUDA_HOST_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  HostNodeParams hp;
  CUresult r = get_plain(kOp_cuGraphHostNodeGetParams, n, &hp);
  if (r == CUDA_SUCCESS) {
    p->fn = reinterpret_cast<CUhostFn>(hp.fn);
    p->userData = reinterpret_cast<void*>(hp.user_data);
  }
  return r;
}
CUresult cuGraphHostNodeSetParams(CUgraphNode n, const CUDA_HOST_NODE_PARAMS* p) {
  return set_host(kOp_cuGraphHostNodeSetParams, node_head(n), p);
}
CUresult cuGraphExecHostNodeSetParams(CUgraphExec x, CUgraphNode n, const CUDA_HOST_NODE_PARAMS* p) {
  return set_host(kOp_cuGraphExecHostNodeSetParams, exec_head(x, n), p);
}

CUresult cuGraphMemAllocNodeGetParams(CUgraphNode n, CUDA_MEM_ALLOC_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuGraphMemAllocNodeGetParams, node_head(n));
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  auto req = r.get<MemAllocNodeRequest>();
  auto props = r.get<CUmemPoolProps>();
  uint64_t dptr = r.get<uint64_t>();
  if (!r.ok() || req.num_access > 64) return CUDA_ERROR_UNKNOWN;
  std::vector<CUmemAccessDesc> access(req.num_access);
  for (auto& d : access) d = r.get<CUmemAccessDesc>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *p = CUDA_MEM_ALLOC_NODE_PARAMS{};
  p->poolProps = props;
  p->bytesize = req.bytes;
  p->dptr = dptr;
  p->accessDescCount = req.num_access;
  std::lock_guard<std::mutex> lock(g_store_mu);
  NodeStore* s = store_of(n);
  if (s->access.size() != access.size()) s->access = access;  // fixed for the node's life
  p->accessDescs = s->access.empty() ? nullptr : s->access.data();
  return CUDA_SUCCESS;
}

// --- executables -------------------------------------------------------

namespace {
template <uint16_t Op>
CUresult instantiate_with_params(CUgraphExec* out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  if (!out || !p) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(Op, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(g));
    w.put<uint64_t>(p->flags);
    w.put<uint64_t>(reinterpret_cast<uint64_t>(p->hUploadStream));
  });
  // The proxy answers the driver's verdict and error node even on failure.
  Reader r = a.reader();
  uint64_t exec = r.get<uint64_t>();
  uint64_t err_node = r.get<uint64_t>();
  uint32_t verdict = r.get<uint32_t>();
  if (!r.ok()) return a.result != CUDA_SUCCESS ? a.result : CUDA_ERROR_UNKNOWN;
  p->hErrNode_out = reinterpret_cast<CUgraphNode>(err_node);
  p->result_out = CUgraphInstantiateResult(verdict);
  if (err_node) handle_seen(err_node);
  if (a.result != CUDA_SUCCESS) return a.result;
  *out = reinterpret_cast<CUgraphExec>(exec);
  handle_seen(exec);
  return CUDA_SUCCESS;
}
}  // namespace

CUresult cuGraphInstantiateWithParams(CUgraphExec* out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  return instantiate_with_params<kOp_cuGraphInstantiateWithParams>(out, g, p);
}
CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec* out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  return instantiate_with_params<kOp_cuGraphInstantiateWithParams_ptsz>(out, g, p);
}

CUresult cuGraphExecUpdate_v2(CUgraphExec x, CUgraph g, CUgraphExecUpdateResultInfo* info) {
  if (!info) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuGraphExecUpdate_v2, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(x));
    w.put<uint64_t>(reinterpret_cast<uint64_t>(g));
  });
  Reader r = a.reader();
  uint32_t verdict = r.get<uint32_t>();
  uint64_t node = r.get<uint64_t>();
  uint64_t from = r.get<uint64_t>();
  if (!r.ok()) return a.result != CUDA_SUCCESS ? a.result : CUDA_ERROR_UNKNOWN;
  info->result = CUgraphExecUpdateResult(verdict);
  info->errorNode = reinterpret_cast<CUgraphNode>(node);
  info->errorFromNode = reinterpret_cast<CUgraphNode>(from);
  if (node) handle_seen(node);
  if (from) handle_seen(from);
  return a.result;
}

// --- graph memory attributes -------------------------------------------

CUresult cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuDeviceGetGraphMemAttribute, [&](Writer& w) {
    w.put<int32_t>(dev);
    w.put<uint32_t>(uint32_t(attr));
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  uint64_t v = r.get<uint64_t>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *static_cast<cuuint64_t*>(value) = v;
  return CUDA_SUCCESS;
}

CUresult cuDeviceSetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(kOp_cuDeviceSetGraphMemAttribute, [&](Writer& w) {
           w.put<int32_t>(dev);
           w.put<uint32_t>(uint32_t(attr));
           w.put<uint64_t>(*static_cast<cuuint64_t*>(value));
         }).result;
}

}  // namespace sing::shim::custom
