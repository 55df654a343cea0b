// Executable graphs: instantiate, launch, per-node updates, whole-graph update.
#include "capture.h"
#include "copy.h"
#include "event.h"
#include "graph.h"
#include "launch.h"

#include <map>

namespace simgpu {

namespace {

CUresult append_body(Graph& g, const std::unordered_map<const GraphNode*, bool>* disabled, GraphBody& b, bool top) {
  auto order = g.topo_order();
  if (order.size() != g.nodes.size()) return CUDA_ERROR_INVALID_VALUE;  // a cycle
  b.memory.push_back(g.memory);
  for (GraphNode* n : order) {
    if (disabled) {
      auto it = disabled->find(n);
      if (it != disabled->end() && it->second) continue;
    }
    if (n->type == CU_GRAPH_NODE_TYPE_GRAPH && n->child) {
      SIM_CHECK(append_body(*n->child, nullptr, b, false));
      continue;
    }
    if (auto* e = std::get_if<EventRecordWork>(&n->work)) b.events.push_back(e->event);
    b.items.push_back(n->work);
    b.origin.push_back(top ? n : nullptr);
  }
  return CUDA_SUCCESS;
}

CUresult lookup_exec(CUgraphExec h, std::shared_ptr<GraphExec>& out) {
  SIM_CHECK(check_init());
  out = registry().get<GraphExec>(h, Kind::GraphExec);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult instantiate(CUgraphExec* out, CUgraph hg, unsigned long long flags, CUgraphNode* err_node = nullptr) {
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hg, g));
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  const unsigned long long known = CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH | CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |
                                   CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH |
                                   CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY;
  if (flags & ~known) return CUDA_ERROR_INVALID_VALUE;
  if (flags & CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH) return CUDA_ERROR_NOT_SUPPORTED;  // no device-side launch
  auto x = std::make_shared<GraphExec>();
  {
    std::lock_guard<std::mutex> lock(g->mu);
    x->source = g->clone(&x->map);
  }
  x->flags = flags;
  Context* c = current_context_raw();
  x->ctx = c ? c->handle() : nullptr;
  CUresult rc = x->rebuild();
  if (rc != CUDA_SUCCESS) {
    if (err_node) *err_node = nullptr;
    return rc;
  }
  registry().add(x.get(), x);
  *out = x->handle();
  return CUDA_SUCCESS;
}

// The exec's copy of an application node, checked to be of `type` (or any when type < 0).
CUresult exec_node(GraphExec& x, CUgraphNode h, int type, GraphNode*& out) {
  auto it = x.map.find(reinterpret_cast<const GraphNode*>(h));
  if (!h || it == x.map.end()) return CUDA_ERROR_INVALID_VALUE;
  if (type >= 0 && it->second->type != CUgraphNodeType(type)) return CUDA_ERROR_INVALID_VALUE;
  out = it->second;
  return CUDA_SUCCESS;
}

CUresult launch(CUgraphExec h, CUstream hs, bool ptds) {
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(h, x));
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h ? hs : hs, ptds, s));
  std::shared_ptr<const GraphBody> body;
  {
    std::lock_guard<std::mutex> lock(x->mu);
    body = x->body;
  }
  if (s->capturing.load()) return capture_work(*s, GraphBodyWork{body});
  // Event-record nodes: the events now point at this launch (completing with it at the latest).
  std::vector<uint64_t> gens;
  for (auto& e : body->events) {
    std::lock_guard<std::mutex> lock(e->mu);
    gens.push_back(++e->gen);
    e->recorded = true;
    e->stream = s;
    e->seq = UINT64_MAX;  // not done until the launch is queued below
    e->capture.reset();
  }
  // Launches of one executable are ordered, whichever streams they go to.
  static std::mutex order_mu;
  std::lock_guard<std::mutex> order(order_mu);
  auto prev = x->last_stream.lock();
  if (prev && prev != s && prev->completed() < x->last_seq) SIM_CHECK(submit(*s, WaitWork{prev, x->last_seq}));
  uint64_t seq = submit_seq(*s, GraphBodyWork{body});
  x->last_stream = s;
  x->last_seq = seq;
  for (size_t i = 0; i < body->events.size(); ++i) {
    auto& e = body->events[i];
    std::lock_guard<std::mutex> lock(e->mu);
    if (e->gen == gens[i]) e->seq = seq;
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult GraphExec::rebuild() {
  auto b = std::make_shared<GraphBody>();
  SIM_CHECK(append_body(*source, &disabled, *b, true));
  b->keep = source;
  std::lock_guard<std::mutex> lock(mu);
  body = std::move(b);
  return CUDA_SUCCESS;
}

CUresult build_body(Graph& g, const std::unordered_map<const GraphNode*, bool>* disabled,
                    std::shared_ptr<GraphBody>& out) {
  auto b = std::make_shared<GraphBody>();
  SIM_CHECK(append_body(g, disabled, *b, true));
  out = std::move(b);
  return CUDA_SUCCESS;
}

void run_graph_body(const GraphBody& b, Stream& s) {
  for (const Work& w : b.items) {
    // Bodies are shared by launches in flight and never modified (updates
    // build a new body); executing work only reads it.
    Work& item = const_cast<Work&>(w);
    if (g_shutting_down.load(std::memory_order_acquire)) return;
    CUresult st = s.ctx->sticky.load(std::memory_order_acquire);
    if (st != CUDA_SUCCESS)
      abandon(item, s, st);
    else
      execute(item, s);
  }
}

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                        unsigned long long flags) {
  SIM_TRY return instantiate(phGraphExec, hGraph, flags);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphInstantiate_v2(CUgraphExec* phGraphExec, CUgraph hGraph, CUgraphNode* phErrorNode,
                                                  char* logBuffer, size_t bufferSize) {
  SIM_TRY
  if (logBuffer && bufferSize) logBuffer[0] = 0;
  return instantiate(phGraphExec, hGraph, 0, phErrorNode);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphInstantiate(CUgraphExec* phGraphExec, CUgraph hGraph, CUgraphNode* phErrorNode,
                                               char* logBuffer, size_t bufferSize) {
  return cuGraphInstantiate_v2(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

static CUresult instantiate_with_params(CUgraphExec* out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p, bool ptds) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  p->hErrNode_out = nullptr;
  CUresult rc = instantiate(out, g, p->flags);
  p->result_out = rc == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS
                  : rc == CUDA_ERROR_INVALID_VALUE ? CUDA_GRAPH_INSTANTIATE_INVALID_STRUCTURE
                                                   : CUDA_GRAPH_INSTANTIATE_ERROR;
  if (rc == CUDA_SUCCESS && (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD) && p->hUploadStream) {
    std::shared_ptr<Stream> s;
    return resolve_stream(p->hUploadStream, ptds, s);  // uploading is a no-op here
  }
  return rc;
}

SIM_EXPORT CUresult CUDAAPI cuGraphInstantiateWithParams(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                         CUDA_GRAPH_INSTANTIATE_PARAMS* instantiateParams) {
  SIM_TRY return instantiate_with_params(phGraphExec, hGraph, instantiateParams, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphInstantiateWithParams_ptsz(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                              CUDA_GRAPH_INSTANTIATE_PARAMS* instantiateParams) {
  SIM_TRY return instantiate_with_params(phGraphExec, hGraph, instantiateParams, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecGetFlags(CUgraphExec hGraphExec, cuuint64_t* flags) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  *flags = x->flags;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  SIM_TRY return launch(hGraphExec, hStream, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  SIM_TRY return launch(hGraphExec, hStream, true);
  SIM_END
}

static CUresult upload(CUgraphExec h, CUstream hs, bool ptds) {
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(h, x));
  std::shared_ptr<Stream> s;
  return resolve_stream(hs, ptds, s);  // nothing to upload: work runs from host memory
}

SIM_EXPORT CUresult CUDAAPI cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream) {
  SIM_TRY return upload(hGraphExec, hStream, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream) {
  SIM_TRY return upload(hGraphExec, hStream, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec hGraphExec) {
  SIM_TRY
  SIM_CHECK(check_init());
  // Launches in flight keep their body (and its graph memory) alive.
  if (!registry().remove(hGraphExec, Kind::GraphExec)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
  SIM_END
}

static CUresult exec_set_kernel(CUgraphExec h, CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS* p) {
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(h, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, node, CU_GRAPH_NODE_TYPE_KERNEL, n));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  KernelWork w;
  std::vector<void*> views;
  SIM_CHECK(kernel_work_from_params(*p, w, views));
  auto& old = std::get<KernelWork>(n->work);
  if (w.fn->module->ctx != old.fn->module->ctx) return CUDA_ERROR_INVALID_VALUE;  // may not change context
  w.cooperative = old.cooperative;
  n->work = std::move(w);
  auto& k = std::get<KernelWork>(n->work);
  n->kparam_ptrs.clear();
  for (auto& q : k.fn->info->params) n->kparam_ptrs.push_back(k.params.data() + q.offset);
  return x->rebuild();
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecKernelNodeSetParams_v2(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                              const CUDA_KERNEL_NODE_PARAMS* nodeParams) {
  SIM_TRY return exec_set_kernel(hGraphExec, hNode, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecKernelNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                           const CUDA_KERNEL_NODE_PARAMS_v1* nodeParams) {
  SIM_TRY
  if (!nodeParams) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS p{};
  p.func = nodeParams->func;
  p.gridDimX = nodeParams->gridDimX;
  p.gridDimY = nodeParams->gridDimY;
  p.gridDimZ = nodeParams->gridDimZ;
  p.blockDimX = nodeParams->blockDimX;
  p.blockDimY = nodeParams->blockDimY;
  p.blockDimZ = nodeParams->blockDimZ;
  p.sharedMemBytes = nodeParams->sharedMemBytes;
  p.kernelParams = nodeParams->kernelParams;
  p.extra = nodeParams->extra;
  return exec_set_kernel(hGraphExec, hNode, &p);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecMemcpyNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                           const CUDA_MEMCPY3D* copyParams, CUcontext ctx) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, hNode, CU_GRAPH_NODE_TYPE_MEMCPY, n));
  if (!copyParams) return CUDA_ERROR_INVALID_VALUE;
  CopyWork w;
  SIM_CHECK(copy_work_from_3d(*copyParams, w));
  n->work = std::move(w);
  n->copy = *copyParams;
  return x->rebuild();
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecMemsetNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                           const CUDA_MEMSET_NODE_PARAMS* memsetParams,
                                                           CUcontext ctx) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, hNode, CU_GRAPH_NODE_TYPE_MEMSET, n));
  if (!memsetParams) return CUDA_ERROR_INVALID_VALUE;
  MemsetWork w;
  SIM_CHECK(memset_work_from_params(*memsetParams, w));
  n->work = w;
  n->memset = *memsetParams;
  return x->rebuild();
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecHostNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                         const CUDA_HOST_NODE_PARAMS* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, hNode, CU_GRAPH_NODE_TYPE_HOST, n));
  if (!nodeParams || !nodeParams->fn) return CUDA_ERROR_INVALID_VALUE;
  n->work = HostWork{nodeParams->fn, nodeParams->userData};
  return x->rebuild();
  SIM_END
}

static CUresult exec_set_event(CUgraphExec h, CUgraphNode node, CUevent ev, bool record) {
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(h, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, node, record ? CU_GRAPH_NODE_TYPE_EVENT_RECORD : CU_GRAPH_NODE_TYPE_WAIT_EVENT, n));
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(ev, e));
  if (record)
    n->work = EventRecordWork{e, 0};
  else
    n->work = EventWaitWork{e};
  return x->rebuild();
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecEventRecordNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                               CUevent event) {
  SIM_TRY return exec_set_event(hGraphExec, hNode, event, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecEventWaitNodeSetEvent(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                             CUevent event) {
  SIM_TRY return exec_set_event(hGraphExec, hNode, event, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecChildGraphNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                               CUgraph childGraph) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, hNode, CU_GRAPH_NODE_TYPE_GRAPH, n));
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(childGraph, g));
  std::lock_guard<std::mutex> lock(g->mu);
  if (!n->child || g->nodes.size() != n->child->nodes.size()) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < g->nodes.size(); ++i)
    if (g->nodes[i]->type != n->child->nodes[i]->type) return CUDA_ERROR_INVALID_VALUE;
  n->child = g->clone();
  return x->rebuild();
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphNodeSetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode, unsigned int isEnabled) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, hNode, -1, n));
  if (n->type != CU_GRAPH_NODE_TYPE_KERNEL && n->type != CU_GRAPH_NODE_TYPE_MEMCPY &&
      n->type != CU_GRAPH_NODE_TYPE_MEMSET)
    return CUDA_ERROR_INVALID_VALUE;
  x->disabled[n] = isEnabled == 0;
  return x->rebuild();
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphNodeGetEnabled(CUgraphExec hGraphExec, CUgraphNode hNode, unsigned int* isEnabled) {
  SIM_TRY
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(hGraphExec, x));
  GraphNode* n;
  SIM_CHECK(exec_node(*x, hNode, -1, n));
  if (!isEnabled) return CUDA_ERROR_INVALID_VALUE;
  if (n->type != CU_GRAPH_NODE_TYPE_KERNEL && n->type != CU_GRAPH_NODE_TYPE_MEMCPY &&
      n->type != CU_GRAPH_NODE_TYPE_MEMSET)
    return CUDA_ERROR_INVALID_VALUE;
  auto it = x->disabled.find(n);
  *isEnabled = (it != x->disabled.end() && it->second) ? 0 : 1;
  return CUDA_SUCCESS;
  SIM_END
}

static CUresult exec_update(CUgraphExec h, CUgraph hg, CUgraphExecUpdateResultInfo* info) {
  std::shared_ptr<GraphExec> x;
  SIM_CHECK(lookup_exec(h, x));
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hg, g));
  if (!info) return CUDA_ERROR_INVALID_VALUE;
  info->result = CU_GRAPH_EXEC_UPDATE_SUCCESS;
  info->errorNode = nullptr;
  info->errorFromNode = nullptr;
  auto fail = [&](CUgraphExecUpdateResult r, GraphNode* node) {
    info->result = r;
    info->errorNode = node ? node->handle() : nullptr;
    return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
  };
  std::lock_guard<std::mutex> lock(g->mu);
  Graph& src = *x->source;
  // Nodes pair up in creation order, as when the same code builds (or captures) the graph again.
  if (g->nodes.size() != src.nodes.size()) return fail(CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED, nullptr);
  std::unordered_map<const GraphNode*, size_t> gi, si;
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    gi[g->nodes[i].get()] = i;
    si[src.nodes[i].get()] = i;
  }
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    GraphNode* a = g->nodes[i].get();
    GraphNode* b = src.nodes[i].get();
    if (a->type != b->type) return fail(CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED, a);
    std::vector<size_t> da, db;
    for (auto* d : a->deps) da.push_back(gi[d]);
    for (auto* d : b->deps) db.push_back(si[d]);
    std::sort(da.begin(), da.end());
    std::sort(db.begin(), db.end());
    if (da != db) return fail(CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED, a);
    if (a->type == CU_GRAPH_NODE_TYPE_KERNEL) {
      auto& ka = std::get<KernelWork>(a->work);
      auto& kb = std::get<KernelWork>(b->work);
      if (ka.fn->module->ctx != kb.fn->module->ctx) return fail(CU_GRAPH_EXEC_UPDATE_ERROR_UNSUPPORTED_FUNCTION_CHANGE, a);
    }
    if (a->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || a->type == CU_GRAPH_NODE_TYPE_MEM_FREE) {
      if (std::get<GraphMemWork>(a->work).addr != std::get<GraphMemWork>(b->work).addr)
        return fail(CU_GRAPH_EXEC_UPDATE_ERROR_PARAMETERS_CHANGED, a);
    }
    if (a->type == CU_GRAPH_NODE_TYPE_GRAPH) {
      if (!a->child || !b->child || a->child->nodes.size() != b->child->nodes.size())
        return fail(CU_GRAPH_EXEC_UPDATE_ERROR_PARAMETERS_CHANGED, a);
    }
  }
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    GraphNode* a = g->nodes[i].get();
    GraphNode* b = src.nodes[i].get();
    b->work = a->work;
    b->copy = a->copy;
    b->memset = a->memset;
    if (a->child) b->child = a->child->clone();
    b->kparam_ptrs.clear();
    if (auto* k = std::get_if<KernelWork>(&b->work))
      for (auto& q : k->fn->info->params) b->kparam_ptrs.push_back(k->params.data() + q.offset);
    x->map[a] = b;  // the new graph's nodes address the executable too
  }
  src.memory = g->memory;
  return x->rebuild();
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecUpdate_v2(CUgraphExec hGraphExec, CUgraph hGraph,
                                                 CUgraphExecUpdateResultInfo* resultInfo) {
  SIM_TRY return exec_update(hGraphExec, hGraph, resultInfo);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecUpdate(CUgraphExec hGraphExec, CUgraph hGraph, CUgraphNode* hErrorNode_out,
                                              CUgraphExecUpdateResult* updateResult_out) {
  SIM_TRY
  CUgraphExecUpdateResultInfo info{};
  CUresult rc = exec_update(hGraphExec, hGraph, &info);
  if (hErrorNode_out) *hErrorNode_out = info.errorNode;
  if (updateResult_out) *updateResult_out = info.result;
  return rc;
  SIM_END
}

}  // extern "C"
