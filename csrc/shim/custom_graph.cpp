// Graph construction and topology on the app's side: adding nodes of every
// kind the proxy forwards, edges, and the array queries.  Node parameters
// and executables are in custom_graph_params.cpp.
//
// Everything here is a sync call: node creation answers with the new id, and
// a bad node must fail at the call, as on a real driver.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "callbacks.h"
#include "custom.h"
#include "graph_util.h"
#include "kernel_params.h"
#include "node_params.h"
#include "wire/opcodes.h"
#include "wire/layout.h"
#include "wire/payloads.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

template <class Fill>
CUresult add_node(uint16_t op, CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, Fill fill) {
  if (!out || !ids_ok(deps, n)) return CUDA_ERROR_INVALID_VALUE;
  GraphNodeAdd head{reinterpret_cast<uint64_t>(g), n};
  Answer a = sync_call(op, [&](Writer& w) {
    w.put(head);
    put_ids(w, deps, n);
    fill(w);
  });
  return take_handle(a, out);
}

auto no_fill = [](Writer&) {};

}  // namespace

// Packs a kernel node's parameters exactly as a launch of the same shape
// would be packed (kernel_params.h), so a bad node fails here, as on a GPU.
CUresult encode_kernel_node(const CUDA_KERNEL_NODE_PARAMS* p, KernelNodeParams* head, std::vector<uint8_t>* buf) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUfunction f = p->func ? p->func : reinterpret_cast<CUfunction>(p->kern);
  const unsigned grid[3] = {p->gridDimX, p->gridDimY, p->gridDimZ};
  const unsigned block[3] = {p->blockDimX, p->blockDimY, p->blockDimZ};
  bool has_params = false;
  CUresult r = pack_kernel_params(f, grid, block, p->sharedMemBytes, p->kernelParams, p->extra, buf, &has_params);
  if (r != CUDA_SUCCESS) return r;
  if (p->func == nullptr && p->ctx && (r = check_handle(p->ctx)) != CUDA_SUCCESS) return r;
  *head = KernelNodeParams{};
  head->function = reinterpret_cast<uint64_t>(f);
  head->ctx = p->func ? 0 : reinterpret_cast<uint64_t>(p->ctx);
  std::memcpy(head->grid, grid, sizeof(grid));
  std::memcpy(head->block, block, sizeof(block));
  head->shared_bytes = p->sharedMemBytes;
  head->param_bytes = uint32_t(buf->size());
  head->has_params = has_params;
  return CUDA_SUCCESS;
}

CUresult cuGraphAddEmptyNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n) {
  return add_node(kOp_cuGraphAddEmptyNode, out, g, deps, n, no_fill);
}

CUresult cuGraphAddEventRecordNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, CUevent ev) {
  return add_node(kOp_cuGraphAddEventRecordNode, out, g, deps, n,
                  [&](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(ev)); });
}

CUresult cuGraphAddEventWaitNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, CUevent ev) {
  return add_node(kOp_cuGraphAddEventWaitNode, out, g, deps, n,
                  [&](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(ev)); });
}

CUresult cuGraphAddChildGraphNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, CUgraph child) {
  return add_node(kOp_cuGraphAddChildGraphNode, out, g, deps, n,
                  [&](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(child)); });
}

CUresult cuGraphAddMemsetNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                              const CUDA_MEMSET_NODE_PARAMS* p, CUcontext ctx) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return add_node(kOp_cuGraphAddMemsetNode, out, g, deps, n, [&](Writer& w) {
    w.put(*p);
    w.put<uint64_t>(reinterpret_cast<uint64_t>(ctx));
  });
}

CUresult cuGraphAddMemcpyNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                              const CUDA_MEMCPY3D* p, CUcontext ctx) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return add_node(kOp_cuGraphAddMemcpyNode, out, g, deps, n, [&](Writer& w) {
    w.put(*p);
    w.put<uint64_t>(reinterpret_cast<uint64_t>(ctx));
  });
}

CUresult cuGraphAddHostNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                            const CUDA_HOST_NODE_PARAMS* p) {
  if (!p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
  // The node will post its function to this process each time it runs.
  ensure_callback_thread();
  HostNodeParams hp{reinterpret_cast<uint64_t>(p->fn), reinterpret_cast<uint64_t>(p->userData)};
  return add_node(kOp_cuGraphAddHostNode, out, g, deps, n, [&](Writer& w) { w.put(hp); });
}

CUresult cuGraphAddKernelNode_v2(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                 const CUDA_KERNEL_NODE_PARAMS* p) {
  if (!out || !ids_ok(deps, n)) return CUDA_ERROR_INVALID_VALUE;
  KernelNodeParams head;
  std::vector<uint8_t> buf;
  CUresult r = encode_kernel_node(p, &head, &buf);
  if (r != CUDA_SUCCESS) return r;
  return add_node(kOp_cuGraphAddKernelNode_v2, out, g, deps, n, [&](Writer& w) {
    w.put(head);
    if (head.has_params) w.put(buf.data(), uint32_t(buf.size()));
  });
}

CUresult cuGraphAddKernelNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                              const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2 = sing::kernel_params_from_v1(*p);
  return custom::cuGraphAddKernelNode_v2(out, g, deps, n, &v2);
}

CUresult cuGraphAddMemAllocNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                CUDA_MEM_ALLOC_NODE_PARAMS* p) {
  if (!p || !out || !ids_ok(deps, n)) return CUDA_ERROR_INVALID_VALUE;
  if (p->accessDescCount && !p->accessDescs) return CUDA_ERROR_INVALID_VALUE;
  if (p->accessDescCount > 64) return CUDA_ERROR_INVALID_VALUE;
  MemAllocNodeRequest req{p->bytesize, p->accessDescCount};
  GraphNodeAdd head{reinterpret_cast<uint64_t>(g), n};
  Answer a = sync_call(kOp_cuGraphAddMemAllocNode, [&](Writer& w) {
    w.put(head);
    put_ids(w, deps, n);
    w.put(req);
    w.put(p->poolProps);
    for (size_t i = 0; i < p->accessDescCount; ++i) w.put(p->accessDescs[i]);
  });
  CUresult r = take_handle(a, out);
  if (r != CUDA_SUCCESS) return r;
  Reader rd = a.reader();
  rd.get<uint64_t>();
  p->dptr = rd.get<uint64_t>();  // the address is fixed when the node is made
  return CUDA_SUCCESS;
}

CUresult cuGraphAddMemFreeNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, CUdeviceptr dptr) {
  return add_node(kOp_cuGraphAddMemFreeNode, out, g, deps, n, [&](Writer& w) { w.put<uint64_t>(dptr); });
}

// --- topology ----------------------------------------------------------

namespace {

template <uint16_t Op>
CUresult change_edges(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, const CUgraphEdgeData* data,
                      size_t n) {
  if (n && (!from || !to)) return CUDA_ERROR_INVALID_VALUE;
  if (n > kMaxGraphIds) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(Op, [&](Writer& w) {
           w.put<uint64_t>(reinterpret_cast<uint64_t>(g));
           w.put<uint64_t>(n);
           w.put<uint32_t>(data != nullptr);
           put_ids(w, from, n);
           put_ids(w, to, n);
           if (data && n) w.put(data, uint32_t(n * sizeof(CUgraphEdgeData)));
         }).result;
}

template <class H>
auto head_of(H h) {
  return [h](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(h)); };
}

}  // namespace

CUresult cuGraphAddDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return change_edges<kOp_cuGraphAddDependencies>(g, from, to, nullptr, n);
}
CUresult cuGraphAddDependencies_v2(CUgraph g, const CUgraphNode* from, const CUgraphNode* to,
                                   const CUgraphEdgeData* data, size_t n) {
  return change_edges<kOp_cuGraphAddDependencies_v2>(g, from, to, data, n);
}
CUresult cuGraphRemoveDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return change_edges<kOp_cuGraphRemoveDependencies>(g, from, to, nullptr, n);
}
CUresult cuGraphRemoveDependencies_v2(CUgraph g, const CUgraphNode* from, const CUgraphNode* to,
                                      const CUgraphEdgeData* data, size_t n) {
  return change_edges<kOp_cuGraphRemoveDependencies_v2>(g, from, to, data, n);
}

CUresult cuGraphGetNodes(CUgraph g, CUgraphNode* nodes, size_t* num) {
  return list_call(kOp_cuGraphGetNodes, head_of(g), num, nodes, nullptr, nullptr);
}
CUresult cuGraphGetRootNodes(CUgraph g, CUgraphNode* nodes, size_t* num) {
  return list_call(kOp_cuGraphGetRootNodes, head_of(g), num, nodes, nullptr, nullptr);
}
CUresult cuGraphGetEdges(CUgraph g, CUgraphNode* from, CUgraphNode* to, size_t* num) {
  if (!from != !to) return CUDA_ERROR_INVALID_VALUE;
  return list_call(kOp_cuGraphGetEdges, head_of(g), num, from, to, nullptr);
}
CUresult cuGraphGetEdges_v2(CUgraph g, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* data, size_t* num) {
  if (!from != !to) return CUDA_ERROR_INVALID_VALUE;
  return list_call(kOp_cuGraphGetEdges_v2, head_of(g), num, from, to, data);
}
CUresult cuGraphNodeGetDependencies(CUgraphNode node, CUgraphNode* deps, size_t* num) {
  return list_call(kOp_cuGraphNodeGetDependencies, head_of(node), num, deps, nullptr, nullptr);
}
CUresult cuGraphNodeGetDependencies_v2(CUgraphNode node, CUgraphNode* deps, CUgraphEdgeData* data, size_t* num) {
  return list_call(kOp_cuGraphNodeGetDependencies_v2, head_of(node), num, deps, nullptr, data);
}
CUresult cuGraphNodeGetDependentNodes(CUgraphNode node, CUgraphNode* deps, size_t* num) {
  return list_call(kOp_cuGraphNodeGetDependentNodes, head_of(node), num, deps, nullptr, nullptr);
}
CUresult cuGraphNodeGetDependentNodes_v2(CUgraphNode node, CUgraphNode* deps, CUgraphEdgeData* data, size_t* num) {
  return list_call(kOp_cuGraphNodeGetDependentNodes_v2, head_of(node), num, deps, nullptr, data);
}

// The driver writes the file; here the app's process does, so the path means
// what it means to the app (its working directory, its mount namespace).
CUresult cuGraphDebugDotPrint(CUgraph g, const char* path, unsigned int flags) {
  if (!path) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuGraphDebugDotPrint, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(g));
    w.put<uint32_t>(flags);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader rd = a.reader();
  const uint64_t n = rd.get<uint64_t>();
  const uint8_t* text = n ? rd.take(uint32_t(n)) : nullptr;
  if (!rd.ok() || n > kResponseBytes) return CUDA_ERROR_UNKNOWN;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  for (uint64_t off = 0; off < n;) {
    ssize_t k = write(fd, text + off, size_t(n - off));
    if (k <= 0) {
      close(fd);
      return CUDA_ERROR_OPERATING_SYSTEM;
    }
    off += uint64_t(k);
  }
  return close(fd) == 0 ? CUDA_SUCCESS : CUDA_ERROR_OPERATING_SYSTEM;
}

}  // namespace sing::shim::custom
