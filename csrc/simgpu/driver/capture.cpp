// Stream capture (cuStreamBeginCapture ... cuStreamEndCapture), including
// cross-stream capture through events and the capture-mode rules for
// "potentially unsafe" calls.
#include "capture.h"

#include "event.h"
#include "graph.h"
#include "module.h"
#include "pools.h"

#include <algorithm>
#include <set>

namespace simgpu {

// graph.cpp
CUresult graph_add_mem_alloc(Graph& g, Device& d, uint64_t size, const std::vector<GraphNode*>& deps, GraphNode** out,
                             uint64_t* addr);
bool graph_memory_contains(Graph& g, uint64_t addr);

namespace {

std::atomic<int> g_active{0};      // captures in progress, any mode
std::atomic<int> g_global{0};      // ... begun in global mode
std::atomic<uint64_t> g_next_capture_id{1};
std::mutex g_threads_mu;
std::unordered_map<unsigned long long, int>& thread_captures() {  // non-relaxed captures per thread
  static auto* m = new std::unordered_map<unsigned long long, int>;
  return *m;
}

unsigned long long thread_key() {
  static std::atomic<unsigned long long> next{1};
  thread_local unsigned long long key = next.fetch_add(1);
  return key;
}

void count_begin(Capture& c) {
  g_active.fetch_add(1);
  if (c.mode == CU_STREAM_CAPTURE_MODE_GLOBAL) g_global.fetch_add(1);
  if (c.mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    std::lock_guard<std::mutex> lock(g_threads_mu);
    ++thread_captures()[c.thread];
  }
}

void count_end(Capture& c) {
  g_active.fetch_sub(1);
  if (c.mode == CU_STREAM_CAPTURE_MODE_GLOBAL) g_global.fetch_sub(1);
  if (c.mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    std::lock_guard<std::mutex> lock(g_threads_mu);
    auto it = thread_captures().find(c.thread);
    if (it != thread_captures().end() && --it->second == 0) thread_captures().erase(it);
  }
}

std::shared_ptr<Capture> capture_of(Stream& s) {
  std::lock_guard<std::mutex> lock(s.capture_mu);
  return s.capture;
}

// Detaches every member stream; the capture is over.
void finish(Capture& c) {
  for (auto& m : c.members) {
    std::lock_guard<std::mutex> lock(m.stream->capture_mu);
    m.stream->capture.reset();
    m.stream->capturing.store(false, std::memory_order_release);
  }
  c.members.clear();
  c.ended = true;
  count_end(c);
}

void set_invalid(Capture& c) {
  if (c.status == CUDA_SUCCESS) c.status = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
}

CUgraphNodeType node_type(const Work& w) {
  if (std::holds_alternative<KernelWork>(w)) return CU_GRAPH_NODE_TYPE_KERNEL;
  if (std::holds_alternative<CopyWork>(w)) return CU_GRAPH_NODE_TYPE_MEMCPY;
  if (std::holds_alternative<MemsetWork>(w)) return CU_GRAPH_NODE_TYPE_MEMSET;
  if (std::holds_alternative<HostWork>(w)) return CU_GRAPH_NODE_TYPE_HOST;
  if (std::holds_alternative<GraphBodyWork>(w)) return CU_GRAPH_NODE_TYPE_GRAPH;
  if (std::holds_alternative<EmptyWork>(w)) return CU_GRAPH_NODE_TYPE_EMPTY;
  return CUgraphNodeType(-1);
}

// Adds a node depending on the member's current dependencies; it becomes them.
GraphNode* add_after(Capture& c, Capture::Member& m, CUgraphNodeType type, Work w) {
  std::vector<CUgraphNode> deps;
  for (auto* d : m.deps) deps.push_back(d->handle());
  GraphNode* n;
  {
    std::lock_guard<std::mutex> lock(c.graph->mu);
    n = c.graph->add_node(type, std::move(w), deps.data(), deps.size());
    c.graph->publish_node(n);
  }
  m.deps = {n};
  return n;
}

void fill_node_params(GraphNode& n) {
  if (auto* k = std::get_if<KernelWork>(&n.work)) {
    for (auto& q : k->fn->info->params) n.kparam_ptrs.push_back(k->params.data() + q.offset);
  } else if (auto* cw = std::get_if<CopyWork>(&n.work)) {
    CUDA_MEMCPY3D p{};
    p.srcMemoryType = p.dstMemoryType = CU_MEMORYTYPE_UNIFIED;
    p.srcDevice = cw->src;
    p.dstDevice = cw->dst;
    p.srcPitch = cw->src_pitch;
    p.dstPitch = cw->dst_pitch;
    p.srcHeight = cw->src_pitch ? cw->src_slice / cw->src_pitch : 0;
    p.dstHeight = cw->dst_pitch ? cw->dst_slice / cw->dst_pitch : 0;
    p.WidthInBytes = cw->width;
    p.Height = cw->height;
    p.Depth = cw->depth;
    n.copy = p;
  } else if (auto* mw = std::get_if<MemsetWork>(&n.work)) {
    CUDA_MEMSET_NODE_PARAMS p{};
    p.dst = mw->dst;
    p.pitch = mw->pitch;
    p.value = mw->value;
    p.elementSize = mw->elem;
    p.width = mw->width;
    p.height = mw->height;
    n.memset = p;
  }
}

// Ancestors of a node set (inclusive).
std::set<GraphNode*> ancestors(const std::vector<GraphNode*>& from) {
  std::set<GraphNode*> seen;
  std::vector<GraphNode*> stack(from.begin(), from.end());
  while (!stack.empty()) {
    GraphNode* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    for (auto* d : n->deps) stack.push_back(d);
  }
  return seen;
}

CUresult begin(CUstream h, CUstreamCaptureMode mode, bool ptds, std::shared_ptr<Graph> into,
               const CUgraphNode* deps, size_t ndeps) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->type == Stream::Type::Legacy) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  auto c = std::make_shared<Capture>();
  c->mode = mode;
  c->id = g_next_capture_id.fetch_add(1);
  c->thread = thread_key();
  c->origin = s;
  std::vector<GraphNode*> start;
  if (into) {
    std::lock_guard<std::mutex> lock(into->mu);
    for (size_t i = 0; i < ndeps; ++i) {
      auto n = registry().get<GraphNode>(deps[i], Kind::GraphNode);
      if (!n || n->graph != into.get()) return CUDA_ERROR_INVALID_VALUE;
      start.push_back(n.get());
    }
    c->graph = into;
  } else {
    c->graph = std::make_shared<Graph>();
    c->graph->publish();
  }
  std::lock_guard<std::mutex> lock(s->capture_mu);
  if (s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  c->members.push_back({s, start});
  s->capture = c;
  s->capturing.store(true, std::memory_order_release);
  count_begin(*c);
  return CUDA_SUCCESS;
}

CUresult end(CUstream h, CUgraph* out, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream_nosticky(h, ptds, s));
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  auto c = capture_of(*s);
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->origin != s) {
    set_invalid(*c);
    return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
  }
  if (c->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL && c->thread != thread_key())
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  CUresult status = c->status;
  if (status == CUDA_SUCCESS) {
    auto joined = ancestors(c->members.front().deps);
    for (size_t i = 1; i < c->members.size() && status == CUDA_SUCCESS; ++i)
      for (auto* d : c->members[i].deps)
        if (!joined.count(d)) {
          status = CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
          break;
        }
  }
  finish(*c);
  *out = nullptr;
  if (status != CUDA_SUCCESS) {
    std::lock_guard<std::mutex> glock(c->graph->mu);
    for (auto& n : c->graph->nodes) registry().remove(n.get(), Kind::GraphNode);
    registry().remove(c->graph.get(), Kind::Graph);
    return status == CUDA_ERROR_STREAM_CAPTURE_UNJOINED ? status : CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  *out = c->graph->handle();
  return CUDA_SUCCESS;
}

CUresult info(CUstream h, bool ptds, CUstreamCaptureStatus* status, cuuint64_t* id, CUgraph* graph,
              const CUgraphNode** deps, const CUgraphEdgeData** edges, size_t* ndeps) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream_nosticky(h, ptds, s));
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  auto c = capture_of(*s);
  if (!c) {
    *status = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
  }
  std::lock_guard<std::mutex> lock(c->mu);
  *status = c->status == CUDA_SUCCESS ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_INVALIDATED;
  if (id) *id = c->id;
  if (graph) *graph = c->graph->handle();
  auto* m = c->member(*s);
  // The returned array lives in the stream until its next capture call.
  s->capture_view.clear();
  if (m)
    for (auto* d : m->deps) s->capture_view.push_back(d->handle());
  if (deps) *deps = s->capture_view.empty() ? nullptr : s->capture_view.data();
  if (edges) *edges = nullptr;  // every captured edge is a default edge
  if (ndeps) *ndeps = s->capture_view.size();
  return CUDA_SUCCESS;
}

CUresult update_deps(CUstream h, bool ptds, CUgraphNode* deps, const CUgraphEdgeData* edges, size_t n,
                     unsigned flags) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES)
    return CUDA_ERROR_INVALID_VALUE;
  if (n && !deps) return CUDA_ERROR_INVALID_VALUE;
  if (edges)
    for (size_t i = 0; i < n; ++i)
      if (edges[i].from_port || edges[i].to_port || edges[i].type) return CUDA_ERROR_NOT_SUPPORTED;
  auto c = capture_of(*s);
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  std::lock_guard<std::mutex> lock(c->mu);
  auto* m = c->member(*s);
  std::vector<GraphNode*> add;
  for (size_t i = 0; i < n; ++i) {
    auto node = registry().get<GraphNode>(deps[i], Kind::GraphNode);
    if (!node || node->graph != c->graph.get()) return CUDA_ERROR_INVALID_VALUE;
    add.push_back(node.get());
  }
  if (flags == CU_STREAM_SET_CAPTURE_DEPENDENCIES) m->deps.clear();
  for (auto* a : add)
    if (std::find(m->deps.begin(), m->deps.end(), a) == m->deps.end()) m->deps.push_back(a);
  return CUDA_SUCCESS;
}

}  // namespace

Capture::Member* Capture::member(Stream& s) {
  for (auto& m : members)
    if (m.stream.get() == &s) return &m;
  return nullptr;
}

CUresult capture_work(Stream& s, Work&& w) {
  auto c = capture_of(s);
  if (!c) return submit(s, std::move(w));  // capture ended meanwhile
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->status != CUDA_SUCCESS) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  CUgraphNodeType type = node_type(w);
  if (int(type) < 0) {
    set_invalid(*c);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  auto* m = c->member(s);
  GraphNode* n = add_after(*c, *m, type, std::move(w));
  fill_node_params(*n);
  return CUDA_SUCCESS;
}

CUresult capture_check_implicit(Stream& s) {
  if (g_active.load(std::memory_order_acquire) == 0 || s.type != Stream::Type::Legacy) return CUDA_SUCCESS;
  CUresult rc = CUDA_SUCCESS;
  for (auto& b : s.ctx->all_streams()) {
    if (!b->blocking() || !b->capturing.load()) continue;
    auto c = capture_of(*b);
    if (!c) continue;
    std::lock_guard<std::mutex> lock(c->mu);
    set_invalid(*c);
    rc = CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
  }
  return rc;
}

CUresult capture_check_unsafe() {
  if (g_active.load(std::memory_order_acquire) == 0) return CUDA_SUCCESS;
  CUstreamCaptureMode mode = tls().capture_mode;
  if (mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  {
    std::lock_guard<std::mutex> lock(g_threads_mu);
    if (thread_captures().count(thread_key())) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (mode == CU_STREAM_CAPTURE_MODE_GLOBAL && g_global.load() > 0) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  return CUDA_SUCCESS;
}

CUresult capture_record_event(Stream& s, Event& e, unsigned flags) {
  auto c = capture_of(s);
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->status != CUDA_SUCCESS) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  auto* m = c->member(s);
  if (flags & CU_EVENT_RECORD_EXTERNAL) {
    auto ev = registry().get<Event>(e.handle(), Kind::Event);
    add_after(*c, *m, CU_GRAPH_NODE_TYPE_EVENT_RECORD, EventRecordWork{ev, 0});
  }
  std::lock_guard<std::mutex> elock(e.mu);
  e.recorded = true;
  e.capture = c;
  e.capture_nodes = m->deps;
  return CUDA_SUCCESS;
}

CUresult capture_wait_event(Stream& s, Event& e, unsigned flags) {
  std::shared_ptr<Capture> ec;
  std::vector<GraphNode*> nodes;
  {
    std::lock_guard<std::mutex> lock(e.mu);
    if (e.capture && !e.capture->ended) {
      ec = e.capture;
      nodes = e.capture_nodes;
    }
  }
  auto sc = capture_of(s);
  if (!ec) {
    if (!sc) return CUDA_SUCCESS;
    std::lock_guard<std::mutex> lock(sc->mu);
    if (flags & CU_EVENT_WAIT_EXTERNAL) {
      auto ev = registry().get<Event>(e.handle(), Kind::Event);
      add_after(*sc, *sc->member(s), CU_GRAPH_NODE_TYPE_WAIT_EVENT, EventWaitWork{ev});
      return CUDA_SUCCESS;
    }
    set_invalid(*sc);
    return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
  }
  if (sc && sc != ec) {
    std::lock_guard<std::mutex> lock(sc->mu);
    set_invalid(*sc);
    return CUDA_ERROR_STREAM_CAPTURE_MERGE;
  }
  std::lock_guard<std::mutex> lock(ec->mu);
  if (ec->status != CUDA_SUCCESS) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (!sc) {
    // The stream joins the capture, depending on the event's nodes.
    std::lock_guard<std::mutex> slock(s.capture_mu);
    if (s.capture) return CUDA_ERROR_ILLEGAL_STATE;
    s.capture = ec;
    s.capturing.store(true, std::memory_order_release);
    ec->members.push_back({s.shared_from_this(), nodes});
    return CUDA_SUCCESS;
  }
  auto* m = ec->member(s);
  for (auto* n : nodes)
    if (std::find(m->deps.begin(), m->deps.end(), n) == m->deps.end()) m->deps.push_back(n);
  return CUDA_SUCCESS;
}

CUresult capture_invalidate(Stream& s, CUresult err) {
  auto c = capture_of(s);
  if (c) {
    std::lock_guard<std::mutex> lock(c->mu);
    set_invalid(*c);
  }
  return err;
}

void capture_abandon(Stream& s) {
  auto c = capture_of(s);
  if (!c) return;
  std::lock_guard<std::mutex> lock(c->mu);
  set_invalid(*c);
  if (c->origin.get() == &s) {
    finish(*c);
    return;
  }
  std::lock_guard<std::mutex> slock(s.capture_mu);
  s.capture.reset();
  s.capturing.store(false);
  c->members.erase(std::remove_if(c->members.begin(), c->members.end(),
                                  [&](const Capture::Member& m) { return m.stream.get() == &s; }),
                   c->members.end());
}

CUresult capture_mem_alloc(Stream& s, uint64_t size, MemPool* pool, CUdeviceptr* out) {
  auto c = capture_of(s);
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->status != CUDA_SUCCESS) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  Device& d = pool ? *pool->dev : *s.ctx->dev;
  auto* m = c->member(s);
  GraphNode* n;
  uint64_t addr;
  SIM_CHECK(graph_add_mem_alloc(*c->graph, d, size, m->deps, &n, &addr));
  {
    std::lock_guard<std::mutex> glock(c->graph->mu);
    c->graph->publish_node(n);
  }
  m->deps = {n};
  *out = addr;
  return CUDA_SUCCESS;
}

CUresult capture_mem_free(Stream& s, CUdeviceptr ptr) {
  auto c = capture_of(s);
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  std::lock_guard<std::mutex> lock(c->mu);
  if (c->status != CUDA_SUCCESS) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (!graph_memory_contains(*c->graph, ptr)) {
    // Freeing memory allocated outside the graph from inside it is not simulated.
    set_invalid(*c);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  add_after(*c, *c->member(s), CU_GRAPH_NODE_TYPE_MEM_FREE, GraphMemWork{ptr, 0, false});
  return CUDA_SUCCESS;
}

CUresult graph_mem_free_outside(CUdeviceptr ptr, Stream& s) {
  // Graph memory stays mapped until its graph is destroyed; freeing it from a
  // stream only ends the application's use of it.
  (void)ptr;
  (void)s;
  return CUDA_SUCCESS;
}

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  SIM_TRY return begin(hStream, mode, false, nullptr, nullptr, 0);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  SIM_TRY return begin(hStream, mode, true, nullptr, nullptr, 0);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamBeginCapture(CUstream hStream) {
  SIM_TRY return begin(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, false, nullptr, nullptr, 0);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamBeginCapture_ptsz(CUstream hStream) {
  SIM_TRY return begin(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, true, nullptr, nullptr, 0);
  SIM_END
}

static CUresult begin_to_graph(CUstream h, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* data, size_t n,
                               CUstreamCaptureMode mode, bool ptds) {
  std::shared_ptr<Graph> graph;
  SIM_CHECK(lookup_graph(g, graph));
  if (n && !deps) return CUDA_ERROR_INVALID_VALUE;
  if (data)
    for (size_t i = 0; i < n; ++i)
      if (data[i].from_port || data[i].to_port || data[i].type) return CUDA_ERROR_NOT_SUPPORTED;
  return begin(h, mode, ptds, graph, deps, n);
}

SIM_EXPORT CUresult CUDAAPI cuStreamBeginCaptureToGraph(CUstream hStream, CUgraph hGraph,
                                                        const CUgraphNode* dependencies,
                                                        const CUgraphEdgeData* dependencyData, size_t numDependencies,
                                                        CUstreamCaptureMode mode) {
  SIM_TRY return begin_to_graph(hStream, hGraph, dependencies, dependencyData, numDependencies, mode, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamBeginCaptureToGraph_ptsz(CUstream hStream, CUgraph hGraph,
                                                             const CUgraphNode* dependencies,
                                                             const CUgraphEdgeData* dependencyData,
                                                             size_t numDependencies, CUstreamCaptureMode mode) {
  SIM_TRY return begin_to_graph(hStream, hGraph, dependencies, dependencyData, numDependencies, mode, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  SIM_TRY return end(hStream, phGraph, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) {
  SIM_TRY return end(hStream, phGraph, true);
  SIM_END
}

static CUresult is_capturing(CUstream h, CUstreamCaptureStatus* st, bool ptds) {
  return info(h, ptds, st, nullptr, nullptr, nullptr, nullptr, nullptr);
}
SIM_EXPORT CUresult CUDAAPI cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  SIM_TRY return is_capturing(hStream, captureStatus, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  SIM_TRY return is_capturing(hStream, captureStatus, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                   cuuint64_t* id_out) {
  SIM_TRY return info(hStream, false, captureStatus_out, id_out, nullptr, nullptr, nullptr, nullptr);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                        cuuint64_t* id_out) {
  SIM_TRY return info(hStream, true, captureStatus_out, id_out, nullptr, nullptr, nullptr, nullptr);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                      cuuint64_t* id_out, CUgraph* graph_out,
                                                      const CUgraphNode** dependencies_out,
                                                      size_t* numDependencies_out) {
  SIM_TRY return info(hStream, false, captureStatus_out, id_out, graph_out, dependencies_out, nullptr,
                      numDependencies_out);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                           cuuint64_t* id_out, CUgraph* graph_out,
                                                           const CUgraphNode** dependencies_out,
                                                           size_t* numDependencies_out) {
  SIM_TRY return info(hStream, true, captureStatus_out, id_out, graph_out, dependencies_out, nullptr,
                      numDependencies_out);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                      cuuint64_t* id_out, CUgraph* graph_out,
                                                      const CUgraphNode** dependencies_out,
                                                      const CUgraphEdgeData** edgeData_out,
                                                      size_t* numDependencies_out) {
  SIM_TRY return info(hStream, false, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                      numDependencies_out);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                                           cuuint64_t* id_out, CUgraph* graph_out,
                                                           const CUgraphNode** dependencies_out,
                                                           const CUgraphEdgeData** edgeData_out,
                                                           size_t* numDependencies_out) {
  SIM_TRY return info(hStream, true, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                      numDependencies_out);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuStreamUpdateCaptureDependencies(CUstream hStream, CUgraphNode* dependencies,
                                                              size_t numDependencies, unsigned int flags) {
  SIM_TRY return update_deps(hStream, false, dependencies, nullptr, numDependencies, flags);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamUpdateCaptureDependencies_ptsz(CUstream hStream, CUgraphNode* dependencies,
                                                                   size_t numDependencies, unsigned int flags) {
  SIM_TRY return update_deps(hStream, true, dependencies, nullptr, numDependencies, flags);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamUpdateCaptureDependencies_v2(CUstream hStream, CUgraphNode* dependencies,
                                                                 const CUgraphEdgeData* dependencyData,
                                                                 size_t numDependencies, unsigned int flags) {
  SIM_TRY return update_deps(hStream, false, dependencies, dependencyData, numDependencies, flags);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamUpdateCaptureDependencies_v2_ptsz(CUstream hStream, CUgraphNode* dependencies,
                                                                      const CUgraphEdgeData* dependencyData,
                                                                      size_t numDependencies, unsigned int flags) {
  SIM_TRY return update_deps(hStream, true, dependencies, dependencyData, numDependencies, flags);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  CUstreamCaptureMode m = *mode;
  if (m != CU_STREAM_CAPTURE_MODE_GLOBAL && m != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      m != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  *mode = tls().capture_mode;
  tls().capture_mode = m;
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
