#include "graph_memory.h"

#include <algorithm>

#include "backend.h"
#include "capture_node.h"
#include "client.h"

namespace sing::proxy {

namespace {

uint64_t key(const void* p) { return reinterpret_cast<uint64_t>(p); }

// Drops one holder of a graph's memory; the last one returns it to the heap.
// Called with the state's lock held; frees are collected for after it.
void drop(GraphMemoryState& s, std::shared_ptr<GraphMemory>& m, std::vector<uint64_t>* frees) {
  if (!m) return;
  if (m.use_count() == 1) {
    for (auto& b : m->blocks) {
      frees->push_back(b.ptr);
      s.used[b.device] -= std::min(s.used[b.device], b.bytes);
    }
  }
  m.reset();
}

void free_all(Client& c, const std::vector<uint64_t>& frees) {
  for (uint64_t p : frees) c.heap.free(p);
}

CUresult add_empty(CUgraph graph, const CUgraphNode* deps, size_t n, CUgraphNode* out) {
  return BACKEND(cuGraphAddEmptyNode)(out, graph, n ? deps : nullptr, n);
}

}  // namespace

CUresult graph_mem_alloc_node(Client& c, CUgraph graph, const CUgraphNode* deps, size_t n,
                              const CUmemPoolProps& props, uint64_t bytes, const std::vector<CUmemAccessDesc>& access,
                              CUgraphNode* out, uint64_t* dptr) {
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (raw(props.allocType) != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (raw(props.location.type) != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_NOT_SUPPORTED;
  if (raw(props.handleTypes) != CU_MEM_HANDLE_TYPE_NONE || props.win32SecurityAttributes) return CUDA_ERROR_NOT_SUPPORTED;
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (props.location.id < 0 || props.location.id >= count) return CUDA_ERROR_INVALID_DEVICE;
  // The node first (it validates the graph and the dependencies), then its memory.
  CUgraphNode node;
  CUresult r = add_empty(graph, deps, n, &node);
  if (r != CUDA_SUCCESS) return r;
  uint64_t p = 0;
  if ((r = c.heap.alloc(bytes, props.location.id, 0, &p)) != CUDA_SUCCESS) {
    BACKEND(cuGraphDestroyNode)(node);
    return r;
  }
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  auto& s = c.graph_memory;
  auto& mem = s.by_graph[key(graph)];
  if (!mem) mem = std::make_shared<GraphMemory>();
  mem->blocks.push_back({p, bytes, props.location.id});
  uint64_t& used = s.used[props.location.id];
  used += bytes;
  s.high[props.location.id] = std::max(s.high[props.location.id], used);
  s.nodes[key(node)] = EmulatedNode{CU_GRAPH_NODE_TYPE_MEM_ALLOC, key(graph), p, bytes, props, access};
  *out = node;
  *dptr = p;
  return CUDA_SUCCESS;
}

CUresult graph_mem_free_node(Client& c, CUgraph graph, const CUgraphNode* deps, size_t n, uint64_t dptr,
                             CUgraphNode* out) {
  {
    std::lock_guard<std::mutex> lock(c.graph_memory.mu);
    auto it = c.graph_memory.by_graph.find(key(graph));
    const bool own = it != c.graph_memory.by_graph.end() &&
                     std::any_of(it->second->blocks.begin(), it->second->blocks.end(),
                                 [&](const GraphMemory::Block& b) { return b.ptr == dptr; });
    // Only memory of this graph's own allocation nodes, as the backend allows.
    if (!own) return CUDA_ERROR_INVALID_VALUE;
  }
  CUgraphNode node;
  CUresult r = add_empty(graph, deps, n, &node);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  c.graph_memory.nodes[key(node)] = EmulatedNode{CU_GRAPH_NODE_TYPE_MEM_FREE, key(graph), dptr, 0, {}, {}};
  *out = node;
  return CUDA_SUCCESS;
}

bool graph_mem_node(Client& c, CUgraphNode node, EmulatedNode* out) {
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  auto it = c.graph_memory.nodes.find(key(node));
  if (it == c.graph_memory.nodes.end()) return false;
  if (out) *out = it->second;
  return true;
}

bool graph_has_mem_nodes(Client& c, CUgraph graph) {
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  for (auto& [node, e] : c.graph_memory.nodes)
    if (e.graph == key(graph)) return true;
  return false;
}

bool is_graph_memory(Client& c, uint64_t ptr) {
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  for (auto& [g, m] : c.graph_memory.by_graph)
    for (auto& b : m->blocks)
      if (ptr >= b.ptr && ptr < b.ptr + b.bytes) return true;
  for (auto& [x, ms] : c.graph_memory.by_exec)
    for (auto& m : ms)
      for (auto& b : m->blocks)
        if (ptr >= b.ptr && ptr < b.ptr + b.bytes) return true;
  return false;
}

void graph_mem_cloned(Client& c, CUgraph from, CUgraph clone) {
  std::vector<std::pair<uint64_t, EmulatedNode>> copies;
  {
    std::lock_guard<std::mutex> lock(c.graph_memory.mu);
    for (auto& [node, e] : c.graph_memory.nodes)
      if (e.graph == key(from)) copies.emplace_back(node, e);
  }
  if (copies.empty()) return;
  for (auto& [node, e] : copies) {
    CUgraphNode twin = nullptr;
    if (BACKEND(cuGraphNodeFindInClone)(&twin, reinterpret_cast<CUgraphNode>(node), clone) != CUDA_SUCCESS) continue;
    e.graph = key(clone);
    std::lock_guard<std::mutex> lock(c.graph_memory.mu);
    c.graph_memory.nodes[key(twin)] = e;
  }
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  auto it = c.graph_memory.by_graph.find(key(from));
  if (it != c.graph_memory.by_graph.end()) c.graph_memory.by_graph[key(clone)] = it->second;
}

void graph_mem_instantiated(Client& c, CUgraph graph, CUgraphExec exec) {
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  auto it = c.graph_memory.by_graph.find(key(graph));
  if (it != c.graph_memory.by_graph.end()) c.graph_memory.by_exec[key(exec)].push_back(it->second);
}

void graph_mem_graph_gone(Client& c, CUgraph graph) {
  std::vector<uint64_t> frees;
  {
    std::lock_guard<std::mutex> lock(c.graph_memory.mu);
    auto& s = c.graph_memory;
    std::erase_if(s.nodes, [&](auto& kv) { return kv.second.graph == key(graph); });
    auto it = s.by_graph.find(key(graph));
    if (it != s.by_graph.end()) {
      drop(s, it->second, &frees);
      s.by_graph.erase(it);
    }
  }
  free_all(c, frees);
}

void graph_mem_exec_gone(Client& c, CUgraphExec exec) {
  std::vector<uint64_t> frees;
  {
    std::lock_guard<std::mutex> lock(c.graph_memory.mu);
    auto& s = c.graph_memory;
    auto it = s.by_exec.find(key(exec));
    if (it != s.by_exec.end()) {
      for (auto& m : it->second) drop(s, m, &frees);
      s.by_exec.erase(it);
    }
  }
  free_all(c, frees);
}

void graph_mem_node_gone(Client& c, CUgraphNode node) {
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  c.graph_memory.nodes.erase(key(node));
}

void graph_mem_clear(Client& c) {
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  c.graph_memory.nodes.clear();
  c.graph_memory.by_graph.clear();
  c.graph_memory.by_exec.clear();
}

CUresult graph_mem_attribute(Client& c, int device, uint32_t attr, uint64_t* value) {
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (device < 0 || device >= count) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
      *value = c.graph_memory.used[device];
      return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
      *value = c.graph_memory.high[device];
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult graph_mem_reset_high(Client& c, int device, uint32_t attr, uint64_t value) {
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (device < 0 || device >= count) return CUDA_ERROR_INVALID_DEVICE;
  if (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH && attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)
    return CUDA_ERROR_INVALID_VALUE;
  if (value != 0) return CUDA_ERROR_INVALID_VALUE;  // only a reset to the current value is allowed
  std::lock_guard<std::mutex> lock(c.graph_memory.mu);
  c.graph_memory.high[device] = c.graph_memory.used[device];
  return CUDA_SUCCESS;
}

CUstreamCaptureStatus capture_status(CUstream stream, bool ptds) {
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  auto f = ptds ? BACKEND(cuStreamIsCapturing_ptsz) : BACKEND(cuStreamIsCapturing);
  if (f(stream, &st) != CUDA_SUCCESS) return CU_STREAM_CAPTURE_STATUS_NONE;
  return st;
}

CUresult capture_mem_alloc(Client& c, CUstream stream, bool ptds, int device, uint64_t bytes, uint64_t* dptr) {
  CUgraph graph;
  std::vector<CUgraphNode> deps;
  CUresult r = capture_point(stream, ptds, &graph, &deps);
  if (r != CUDA_SUCCESS) return r;
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = device;
  CUgraphNode node;
  if ((r = graph_mem_alloc_node(c, graph, deps.data(), deps.size(), props, bytes, {}, &node, dptr)) != CUDA_SUCCESS)
    return r;
  return capture_advance(stream, ptds, node);
}

CUresult capture_mem_free(Client& c, CUstream stream, bool ptds, uint64_t dptr) {
  CUgraph graph;
  std::vector<CUgraphNode> deps;
  CUresult r = capture_point(stream, ptds, &graph, &deps);
  if (r != CUDA_SUCCESS) return r;
  CUgraphNode node;
  r = graph_mem_free_node(c, graph, deps.data(), deps.size(), dptr, &node);
  if (r == CUDA_ERROR_INVALID_VALUE) {
    // Freeing memory that is not the capture's own from inside it is not
    // captured (as on libsimgpu): the capture is invalidated, which a
    // stream synchronization does on every driver.
    (ptds ? BACKEND(cuStreamSynchronize_ptsz) : BACKEND(cuStreamSynchronize))(stream);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (r != CUDA_SUCCESS) return r;
  return capture_advance(stream, ptds, node);
}

CUresult capture_permits_unsafe_call() {
  // cuMemFree of an address no driver ever hands out: the driver checks the
  // capture rules first (STREAM_CAPTURE_* when the call is not allowed), then
  // refuses the address, and has no other effect.
  constexpr CUdeviceptr kNeverAllocated = 1;
  CUresult r = BACKEND(cuMemFree_v2)(kNeverAllocated);
  switch (r) {
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED:
    case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED:
    case CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD:
    case CUDA_ERROR_STREAM_CAPTURE_IMPLICIT:
      return r;
    default:
      return CUDA_SUCCESS;
  }
}

}  // namespace sing::proxy
