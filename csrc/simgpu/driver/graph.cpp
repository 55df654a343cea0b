// Graph construction and introspection: cuGraphCreate, cuGraphAdd*Node,
// node parameters, edges, clone, destroy, DOT output.
#include "graph.h"

#include "copy.h"
#include "event.h"
#include "launch.h"
#include "memory.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace simgpu {

GraphMemory::~GraphMemory() {
  for (uint64_t a : addrs) {
    auto r = memmap().erase(a);
    if (!r) continue;
    if (Device* d = device_at(r->device)) d->graph_mem_used.fetch_sub(r->held);
    release_device(*r);
  }
}

Graph::~Graph() {
  for (auto& [obj, n] : user_refs) obj->release(n);
}

GraphNode* Graph::add_node(CUgraphNodeType type, Work w, const CUgraphNode* deps, size_t n) {
  auto node = std::make_unique<GraphNode>();
  node->graph = this;
  node->type = type;
  node->work = std::move(w);
  node->serial = next_serial++;
  for (size_t i = 0; i < n; ++i) {
    auto* d = reinterpret_cast<GraphNode*>(deps[i]);
    node->deps.push_back(d);
    d->dependents.push_back(node.get());
  }
  nodes.push_back(std::move(node));
  return nodes.back().get();
}

void Graph::publish_node(GraphNode* n) {
  if (published) registry().add(n, std::shared_ptr<GraphNode>(shared_from_this(), n));
}

void Graph::publish() {
  published = true;
  registry().add(this, shared_from_this());
  for (auto& n : nodes) publish_node(n.get());
}

std::shared_ptr<Graph> Graph::clone(std::unordered_map<const GraphNode*, GraphNode*>* out_map) {
  auto g = std::make_shared<Graph>();
  g->memory = memory;
  g->next_serial = next_serial;
  g->user_refs = user_refs;  // a clone holds its own references
  for (auto& [obj, n] : g->user_refs) obj->retain(n);
  std::unordered_map<const GraphNode*, GraphNode*> map;
  for (auto& n : nodes) {
    auto c = std::make_unique<GraphNode>();
    c->graph = g.get();
    c->type = n->type;
    c->work = n->work;
    c->serial = n->serial;
    c->copy = n->copy;
    c->memset = n->memset;
    c->ctx = n->ctx;
    c->alloc = n->alloc;
    c->alloc_access = n->alloc_access;
    c->attrs = n->attrs;
    if (n->child) c->child = n->child->clone();
    if (auto* k = std::get_if<KernelWork>(&c->work)) {
      for (auto& p : k->fn->info->params) c->kparam_ptrs.push_back(k->params.data() + p.offset);
    }
    map[n.get()] = c.get();
    g->nodes.push_back(std::move(c));
  }
  for (auto& n : nodes) {
    GraphNode* c = map[n.get()];
    for (auto* d : n->deps) c->deps.push_back(map[d]);
    for (auto* d : n->dependents) c->dependents.push_back(map[d]);
  }
  if (out_map) *out_map = std::move(map);
  return g;
}

std::vector<GraphNode*> Graph::topo_order() {
  std::unordered_map<GraphNode*, size_t> indeg;
  auto cmp = [](GraphNode* a, GraphNode* b) { return a->serial < b->serial; };
  std::set<GraphNode*, decltype(cmp)> ready(cmp);
  for (auto& n : nodes) {
    indeg[n.get()] = n->deps.size();
    if (n->deps.empty()) ready.insert(n.get());
  }
  std::vector<GraphNode*> out;
  while (!ready.empty()) {
    GraphNode* n = *ready.begin();
    ready.erase(ready.begin());
    out.push_back(n);
    for (auto* d : n->dependents)
      if (--indeg[d] == 0) ready.insert(d);
  }
  return out;  // shorter than nodes when there is a cycle
}

CUresult lookup_graph(CUgraph h, std::shared_ptr<Graph>& out) {
  SIM_CHECK(check_init());
  out = registry().get<Graph>(h, Kind::Graph);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult lookup_node(CUgraphNode h, std::shared_ptr<GraphNode>& out) {
  SIM_CHECK(check_init());
  out = registry().get<GraphNode>(h, Kind::GraphNode);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult kernel_work_from_params(const CUDA_KERNEL_NODE_PARAMS& p, KernelWork& out, std::vector<void*>& views) {
  CUcontext ctx = p.ctx;
  Context* c = nullptr;
  std::shared_ptr<Context> held;
  if (p.func) {
    auto f = registry().get<Function>(p.func, Kind::Function);
    if (f) c = f->module->ctx.get();
  }
  if (!c) {
    if (ctx) {
      held = registry().get<Context>(ctx, Kind::Context);
      if (!held) return CUDA_ERROR_INVALID_CONTEXT;
      c = held.get();
    } else {
      SIM_CHECK(current_context(&c));
    }
  }
  std::shared_ptr<Function> fn;
  CUfunction h = p.func ? p.func : reinterpret_cast<CUfunction>(p.kern);
  if (!h) return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(resolve_function(h, c, fn));
  KernelWork w;
  SIM_CHECK(prepare_launch(fn, {p.gridDimX, p.gridDimY, p.gridDimZ}, {p.blockDimX, p.blockDimY, p.blockDimZ},
                           p.sharedMemBytes, false, p.kernelParams, p.extra, w));
  views.clear();
  for (auto& q : fn->info->params) views.push_back(w.params.data() + q.offset);
  out = std::move(w);
  return CUDA_SUCCESS;
}

namespace {

CUresult check_deps(Graph& g, const CUgraphNode* deps, size_t n) {
  if (n && !deps) return CUDA_ERROR_INVALID_VALUE;
  std::set<const void*> seen;
  for (size_t i = 0; i < n; ++i) {
    auto d = registry().get<GraphNode>(deps[i], Kind::GraphNode);
    if (!d || d->graph != &g || !seen.insert(deps[i]).second) return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

template <class Fill>
CUresult add(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps, size_t n, CUgraphNodeType type, Work w,
             Fill fill) {
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hg, g));
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g->mu);
  SIM_CHECK(check_deps(*g, deps, n));
  GraphNode* node = g->add_node(type, std::move(w), deps, n);
  fill(*node);
  g->publish_node(node);
  *out = node->handle();
  return CUDA_SUCCESS;
}

auto no_fill = [](GraphNode&) {};

CUresult event_of(CUevent h, std::shared_ptr<Event>& e) { return lookup_event(h, e); }

CUresult kernel_params_v1(const CUDA_KERNEL_NODE_PARAMS_v1* p, CUDA_KERNEL_NODE_PARAMS& out) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  out = {};
  out.func = p->func;
  out.gridDimX = p->gridDimX;
  out.gridDimY = p->gridDimY;
  out.gridDimZ = p->gridDimZ;
  out.blockDimX = p->blockDimX;
  out.blockDimY = p->blockDimY;
  out.blockDimZ = p->blockDimZ;
  out.sharedMemBytes = p->sharedMemBytes;
  out.kernelParams = p->kernelParams;
  out.extra = p->extra;
  return CUDA_SUCCESS;
}

CUresult add_kernel(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, const CUDA_KERNEL_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  KernelWork w;
  std::vector<void*> views;
  SIM_CHECK(kernel_work_from_params(*p, w, views));
  return add(out, g, deps, n, CU_GRAPH_NODE_TYPE_KERNEL, std::move(w), [&](GraphNode& node) {
    // The views must point into the node's own copy of the packed buffer.
    auto& k = std::get<KernelWork>(node.work);
    for (auto& q : k.fn->info->params) node.kparam_ptrs.push_back(k.params.data() + q.offset);
  });
}

CUresult get_kernel(CUgraphNode h, CUDA_KERNEL_NODE_PARAMS* p) {
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(h, n));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  if (n->type != CU_GRAPH_NODE_TYPE_KERNEL) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  auto& k = std::get<KernelWork>(n->work);
  *p = {};
  p->func = k.fn->handle();
  p->gridDimX = k.grid.x;
  p->gridDimY = k.grid.y;
  p->gridDimZ = k.grid.z;
  p->blockDimX = k.block.x;
  p->blockDimY = k.block.y;
  p->blockDimZ = k.block.z;
  p->sharedMemBytes = k.shared_bytes;
  p->kernelParams = n->kparam_ptrs.empty() ? nullptr : n->kparam_ptrs.data();
  p->extra = nullptr;
  p->ctx = k.fn->module->ctx->handle();
  return CUDA_SUCCESS;
}

CUresult set_kernel(CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS* p) {
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(h, n));
  if (!p || n->type != CU_GRAPH_NODE_TYPE_KERNEL) return CUDA_ERROR_INVALID_VALUE;
  KernelWork w;
  std::vector<void*> views;
  SIM_CHECK(kernel_work_from_params(*p, w, views));
  std::lock_guard<std::mutex> lock(n->graph->mu);
  n->work = std::move(w);
  auto& k = std::get<KernelWork>(n->work);
  n->kparam_ptrs.clear();
  for (auto& q : k.fn->info->params) n->kparam_ptrs.push_back(k.params.data() + q.offset);
  return CUDA_SUCCESS;
}

CUresult alloc_node(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps, size_t n, CUDA_MEM_ALLOC_NODE_PARAMS* p) {
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hg, g));
  if (!p || !out || p->bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (p->poolProps.allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (p->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_NOT_SUPPORTED;
  Device* d;
  SIM_CHECK(lookup_device(p->poolProps.location.id, &d));
  if (p->accessDescCount && !p->accessDescs) return CUDA_ERROR_INVALID_VALUE;
  // Memory of the device, charged to it, owned by the graph.
  std::shared_ptr<Context> ctx = primary_context(*d);
  Context* cur = current_context_raw();
  Context* owner = (cur && cur->dev == d) ? cur : ctx.get();
  MemRange proto;
  proto.internal = true;
  for (size_t i = 0; i < p->accessDescCount; ++i)
    if (p->accessDescs[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
        p->accessDescs[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE)
      proto.access_read = proto.access_write |= 1u << p->accessDescs[i].location.id;
  uint64_t addr;
  {
    std::lock_guard<std::mutex> lock(g->mu);
    SIM_CHECK(check_deps(*g, deps, n));
  }
  SIM_CHECK(alloc_device(*owner, p->bytesize, proto, &addr));
  {
    std::lock_guard<std::mutex> lock(g->memory->mu);
    g->memory->addrs.push_back(addr);
  }
  uint64_t used = d->graph_mem_used.fetch_add(align_up(p->bytesize, kAllocAlign)) + align_up(p->bytesize, kAllocAlign);
  uint64_t high = d->graph_mem_high.load();
  while (used > high && !d->graph_mem_high.compare_exchange_weak(high, used)) {
  }
  p->dptr = addr;
  return add(out, hg, deps, n, CU_GRAPH_NODE_TYPE_MEM_ALLOC, GraphMemWork{addr, p->bytesize, true},
             [&](GraphNode& node) {
               node.alloc = *p;
               node.alloc_access.assign(p->accessDescs, p->accessDescs + p->accessDescCount);
               node.alloc.accessDescs = node.alloc_access.data();
             });
}

bool graph_owns(Graph& g, uint64_t addr) {
  std::lock_guard<std::mutex> lock(g.memory->mu);
  return std::find(g.memory->addrs.begin(), g.memory->addrs.end(), addr) != g.memory->addrs.end();
}

}  // namespace

// Used by capture for cuMemAllocAsync / cuMemFreeAsync.
CUresult graph_add_mem_alloc(Graph& g, Device& d, uint64_t size, const std::vector<GraphNode*>& deps, GraphNode** out,
                             uint64_t* addr) {
  CUDA_MEM_ALLOC_NODE_PARAMS p{};
  p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.poolProps.location.id = d.ordinal;
  p.bytesize = size;
  std::vector<CUgraphNode> hs;
  for (auto* n : deps) hs.push_back(n->handle());
  CUgraphNode node;
  // Capture graphs are not published yet: add directly.
  MemRange proto;
  proto.internal = true;
  Context* cur = current_context_raw();
  std::shared_ptr<Context> prim = primary_context(d);
  Context* owner = (cur && cur->dev == &d) ? cur : prim.get();
  uint64_t a;
  SIM_CHECK(alloc_device(*owner, size, proto, &a));
  {
    std::lock_guard<std::mutex> lock(g.memory->mu);
    g.memory->addrs.push_back(a);
  }
  d.graph_mem_used.fetch_add(align_up(size, kAllocAlign));
  std::lock_guard<std::mutex> lock(g.mu);
  GraphNode* nn = g.add_node(CU_GRAPH_NODE_TYPE_MEM_ALLOC, GraphMemWork{a, size, true}, hs.data(), hs.size());
  p.dptr = a;
  nn->alloc = p;
  (void)node;
  *out = nn;
  *addr = a;
  return CUDA_SUCCESS;
}

bool graph_memory_contains(Graph& g, uint64_t addr) { return graph_owns(g, addr); }

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuGraphCreate(CUgraph* phGraph, unsigned int flags) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!phGraph || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto g = std::make_shared<Graph>();
  g->publish();
  *phGraph = g->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphDestroy(CUgraph hGraph) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  std::lock_guard<std::mutex> lock(g->mu);
  for (auto& n : g->nodes) registry().remove(n.get(), Kind::GraphNode);
  registry().remove(hGraph, Kind::Graph);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddKernelNode_v2(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                    const CUgraphNode* dependencies, size_t numDependencies,
                                                    const CUDA_KERNEL_NODE_PARAMS* nodeParams) {
  SIM_TRY return add_kernel(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddKernelNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                 const CUgraphNode* dependencies, size_t numDependencies,
                                                 const CUDA_KERNEL_NODE_PARAMS_v1* nodeParams) {
  SIM_TRY
  CUDA_KERNEL_NODE_PARAMS p;
  SIM_CHECK(kernel_params_v1(nodeParams, p));
  return add_kernel(phGraphNode, hGraph, dependencies, numDependencies, &p);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeGetParams_v2(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS* nodeParams) {
  SIM_TRY return get_kernel(hNode, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeGetParams(CUgraphNode hNode, CUDA_KERNEL_NODE_PARAMS_v1* nodeParams) {
  SIM_TRY
  if (!nodeParams) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS p;
  SIM_CHECK(get_kernel(hNode, &p));
  nodeParams->func = p.func;
  nodeParams->gridDimX = p.gridDimX;
  nodeParams->gridDimY = p.gridDimY;
  nodeParams->gridDimZ = p.gridDimZ;
  nodeParams->blockDimX = p.blockDimX;
  nodeParams->blockDimY = p.blockDimY;
  nodeParams->blockDimZ = p.blockDimZ;
  nodeParams->sharedMemBytes = p.sharedMemBytes;
  nodeParams->kernelParams = p.kernelParams;
  nodeParams->extra = nullptr;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeSetParams_v2(CUgraphNode hNode,
                                                          const CUDA_KERNEL_NODE_PARAMS* nodeParams) {
  SIM_TRY return set_kernel(hNode, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeSetParams(CUgraphNode hNode,
                                                       const CUDA_KERNEL_NODE_PARAMS_v1* nodeParams) {
  SIM_TRY
  CUDA_KERNEL_NODE_PARAMS p;
  SIM_CHECK(kernel_params_v1(nodeParams, p));
  return set_kernel(hNode, &p);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddMemcpyNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                 const CUgraphNode* dependencies, size_t numDependencies,
                                                 const CUDA_MEMCPY3D* copyParams, CUcontext ctx) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!copyParams) return CUDA_ERROR_INVALID_VALUE;
  CopyWork w;
  SIM_CHECK(copy_work_from_3d(*copyParams, w));
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_MEMCPY, std::move(w),
             [&](GraphNode& n) {
               n.copy = *copyParams;
               n.ctx = ctx;
             });
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphMemcpyNodeGetParams(CUgraphNode hNode, CUDA_MEMCPY3D* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!nodeParams || n->type != CU_GRAPH_NODE_TYPE_MEMCPY) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  *nodeParams = n->copy;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphMemcpyNodeSetParams(CUgraphNode hNode, const CUDA_MEMCPY3D* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!nodeParams || n->type != CU_GRAPH_NODE_TYPE_MEMCPY) return CUDA_ERROR_INVALID_VALUE;
  CopyWork w;
  SIM_CHECK(copy_work_from_3d(*nodeParams, w));
  std::lock_guard<std::mutex> lock(n->graph->mu);
  n->work = std::move(w);
  n->copy = *nodeParams;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddMemsetNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                 const CUgraphNode* dependencies, size_t numDependencies,
                                                 const CUDA_MEMSET_NODE_PARAMS* memsetParams, CUcontext ctx) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!memsetParams) return CUDA_ERROR_INVALID_VALUE;
  MemsetWork w;
  SIM_CHECK(memset_work_from_params(*memsetParams, w));
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_MEMSET, w, [&](GraphNode& n) {
    n.memset = *memsetParams;
    n.ctx = ctx;
  });
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphMemsetNodeGetParams(CUgraphNode hNode, CUDA_MEMSET_NODE_PARAMS* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!nodeParams || n->type != CU_GRAPH_NODE_TYPE_MEMSET) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  *nodeParams = n->memset;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphMemsetNodeSetParams(CUgraphNode hNode, const CUDA_MEMSET_NODE_PARAMS* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!nodeParams || n->type != CU_GRAPH_NODE_TYPE_MEMSET) return CUDA_ERROR_INVALID_VALUE;
  MemsetWork w;
  SIM_CHECK(memset_work_from_params(*nodeParams, w));
  std::lock_guard<std::mutex> lock(n->graph->mu);
  n->work = w;
  n->memset = *nodeParams;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddHostNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                               const CUgraphNode* dependencies, size_t numDependencies,
                                               const CUDA_HOST_NODE_PARAMS* nodeParams) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!nodeParams || !nodeParams->fn) return CUDA_ERROR_INVALID_VALUE;
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_HOST,
             HostWork{nodeParams->fn, nodeParams->userData}, no_fill);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphHostNodeGetParams(CUgraphNode hNode, CUDA_HOST_NODE_PARAMS* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!nodeParams || n->type != CU_GRAPH_NODE_TYPE_HOST) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  auto& h = std::get<HostWork>(n->work);
  nodeParams->fn = h.fn;
  nodeParams->userData = h.user;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphHostNodeSetParams(CUgraphNode hNode, const CUDA_HOST_NODE_PARAMS* nodeParams) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!nodeParams || !nodeParams->fn || n->type != CU_GRAPH_NODE_TYPE_HOST) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  n->work = HostWork{nodeParams->fn, nodeParams->userData};
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddEmptyNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                const CUgraphNode* dependencies, size_t numDependencies) {
  SIM_TRY return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_EMPTY, EmptyWork{},
                     no_fill);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddEventRecordNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                      const CUgraphNode* dependencies, size_t numDependencies,
                                                      CUevent event) {
  SIM_TRY
  std::shared_ptr<Event> e;
  SIM_CHECK(event_of(event, e));
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_EVENT_RECORD,
             EventRecordWork{e, 0}, no_fill);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddEventWaitNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                    const CUgraphNode* dependencies, size_t numDependencies,
                                                    CUevent event) {
  SIM_TRY
  std::shared_ptr<Event> e;
  SIM_CHECK(event_of(event, e));
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_WAIT_EVENT, EventWaitWork{e},
             no_fill);
  SIM_END
}

static CUresult event_node_get(CUgraphNode hNode, CUevent* out, CUgraphNodeType type) {
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!out || n->type != type) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  if (type == CU_GRAPH_NODE_TYPE_EVENT_RECORD)
    *out = std::get<EventRecordWork>(n->work).event->handle();
  else
    *out = std::get<EventWaitWork>(n->work).event->handle();
  return CUDA_SUCCESS;
}

static CUresult event_node_set(CUgraphNode hNode, CUevent ev, CUgraphNodeType type) {
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (n->type != type) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Event> e;
  SIM_CHECK(event_of(ev, e));
  std::lock_guard<std::mutex> lock(n->graph->mu);
  if (type == CU_GRAPH_NODE_TYPE_EVENT_RECORD)
    n->work = EventRecordWork{e, 0};
  else
    n->work = EventWaitWork{e};
  return CUDA_SUCCESS;
}

SIM_EXPORT CUresult CUDAAPI cuGraphEventRecordNodeGetEvent(CUgraphNode hNode, CUevent* event_out) {
  SIM_TRY return event_node_get(hNode, event_out, CU_GRAPH_NODE_TYPE_EVENT_RECORD);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphEventRecordNodeSetEvent(CUgraphNode hNode, CUevent event) {
  SIM_TRY return event_node_set(hNode, event, CU_GRAPH_NODE_TYPE_EVENT_RECORD);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphEventWaitNodeGetEvent(CUgraphNode hNode, CUevent* event_out) {
  SIM_TRY return event_node_get(hNode, event_out, CU_GRAPH_NODE_TYPE_WAIT_EVENT);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphEventWaitNodeSetEvent(CUgraphNode hNode, CUevent event) {
  SIM_TRY return event_node_set(hNode, event, CU_GRAPH_NODE_TYPE_WAIT_EVENT);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddChildGraphNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                     const CUgraphNode* dependencies, size_t numDependencies,
                                                     CUgraph childGraph) {
  SIM_TRY
  std::shared_ptr<Graph> child;
  SIM_CHECK(lookup_graph(childGraph, child));
  if (childGraph == hGraph) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Graph> copy;
  {
    std::lock_guard<std::mutex> lock(child->mu);
    // Mem alloc/free nodes may not be in child graphs.
    for (auto& n : child->nodes)
      if (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || n->type == CU_GRAPH_NODE_TYPE_MEM_FREE)
        return CUDA_ERROR_NOT_SUPPORTED;
    copy = child->clone();
  }
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_GRAPH, EmptyWork{},
             [&](GraphNode& n) { n.child = copy; });
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphChildGraphNodeGetGraph(CUgraphNode hNode, CUgraph* phGraph) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!phGraph || n->type != CU_GRAPH_NODE_TYPE_GRAPH) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  if (!n->child->published) n->child->publish();  // a view owned by the node
  *phGraph = n->child->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                   const CUgraphNode* dependencies, size_t numDependencies,
                                                   CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  SIM_TRY return alloc_node(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphMemAllocNodeGetParams(CUgraphNode hNode, CUDA_MEM_ALLOC_NODE_PARAMS* params_out) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!params_out || n->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  *params_out = n->alloc;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddMemFreeNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                                  const CUgraphNode* dependencies, size_t numDependencies,
                                                  CUdeviceptr dptr) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  if (!graph_owns(*g, dptr)) return CUDA_ERROR_INVALID_VALUE;
  return add(phGraphNode, hGraph, dependencies, numDependencies, CU_GRAPH_NODE_TYPE_MEM_FREE,
             GraphMemWork{dptr, 0, false}, no_fill);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphMemFreeNodeGetParams(CUgraphNode hNode, CUdeviceptr* dptr_out) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!dptr_out || n->type != CU_GRAPH_NODE_TYPE_MEM_FREE) return CUDA_ERROR_INVALID_VALUE;
  *dptr_out = std::get<GraphMemWork>(n->work).addr;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType* type) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!type) return CUDA_ERROR_INVALID_VALUE;
  *type = n->type;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphGetNodes(CUgraph hGraph, CUgraphNode* nodes, size_t* numNodes) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  if (!numNodes) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g->mu);
  if (nodes) {
    size_t n = std::min(*numNodes, g->nodes.size());
    for (size_t i = 0; i < n; ++i) nodes[i] = g->nodes[i]->handle();
    for (size_t i = n; i < *numNodes; ++i) nodes[i] = nullptr;
  }
  *numNodes = g->nodes.size();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphGetRootNodes(CUgraph hGraph, CUgraphNode* rootNodes, size_t* numRootNodes) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  if (!numRootNodes) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g->mu);
  std::vector<CUgraphNode> roots;
  for (auto& n : g->nodes)
    if (n->deps.empty()) roots.push_back(n->handle());
  if (rootNodes) {
    size_t n = std::min(*numRootNodes, roots.size());
    for (size_t i = 0; i < n; ++i) rootNodes[i] = roots[i];
    for (size_t i = n; i < *numRootNodes; ++i) rootNodes[i] = nullptr;
  }
  *numRootNodes = roots.size();
  return CUDA_SUCCESS;
  SIM_END
}

static CUresult get_edges(CUgraph hGraph, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* edgeData,
                          size_t* numEdges) {
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  if (!numEdges || (!from != !to)) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g->mu);
  std::vector<std::pair<CUgraphNode, CUgraphNode>> edges;
  for (auto& n : g->nodes)
    for (auto* d : n->dependents) edges.push_back({n->handle(), d->handle()});
  if (from) {
    size_t n = std::min(*numEdges, edges.size());
    for (size_t i = 0; i < *numEdges; ++i) {
      from[i] = i < n ? edges[i].first : nullptr;
      to[i] = i < n ? edges[i].second : nullptr;
      if (edgeData) edgeData[i] = CUgraphEdgeData{};
    }
  }
  *numEdges = edges.size();
  return CUDA_SUCCESS;
}

SIM_EXPORT CUresult CUDAAPI cuGraphGetEdges_v2(CUgraph hGraph, CUgraphNode* from, CUgraphNode* to,
                                               CUgraphEdgeData* edgeData, size_t* numEdges) {
  SIM_TRY return get_edges(hGraph, from, to, edgeData, numEdges);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphGetEdges(CUgraph hGraph, CUgraphNode* from, CUgraphNode* to, size_t* numEdges) {
  SIM_TRY return get_edges(hGraph, from, to, nullptr, numEdges);
  SIM_END
}

static CUresult node_neighbours(CUgraphNode hNode, CUgraphNode* out, CUgraphEdgeData* edgeData, size_t* num,
                                bool deps) {
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  if (!num) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  auto& v = deps ? n->deps : n->dependents;
  if (out) {
    size_t k = std::min(*num, v.size());
    for (size_t i = 0; i < *num; ++i) {
      out[i] = i < k ? v[i]->handle() : nullptr;
      if (edgeData) edgeData[i] = CUgraphEdgeData{};
    }
  }
  *num = v.size();
  return CUDA_SUCCESS;
}

SIM_EXPORT CUresult CUDAAPI cuGraphNodeGetDependencies_v2(CUgraphNode hNode, CUgraphNode* dependencies,
                                                          CUgraphEdgeData* edgeData, size_t* numDependencies) {
  SIM_TRY return node_neighbours(hNode, dependencies, edgeData, numDependencies, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphNodeGetDependencies(CUgraphNode hNode, CUgraphNode* dependencies,
                                                       size_t* numDependencies) {
  SIM_TRY return node_neighbours(hNode, dependencies, nullptr, numDependencies, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphNodeGetDependentNodes_v2(CUgraphNode hNode, CUgraphNode* dependentNodes,
                                                            CUgraphEdgeData* edgeData, size_t* numDependentNodes) {
  SIM_TRY return node_neighbours(hNode, dependentNodes, edgeData, numDependentNodes, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphNodeGetDependentNodes(CUgraphNode hNode, CUgraphNode* dependentNodes,
                                                         size_t* numDependentNodes) {
  SIM_TRY return node_neighbours(hNode, dependentNodes, nullptr, numDependentNodes, false);
  SIM_END
}

static CUresult change_edges(CUgraph hGraph, const CUgraphNode* from, const CUgraphNode* to,
                             const CUgraphEdgeData* edgeData, size_t n, bool add_edges) {
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  if (n && (!from || !to)) return CUDA_ERROR_INVALID_VALUE;
  if (edgeData)
    for (size_t i = 0; i < n; ++i)
      if (edgeData[i].from_port || edgeData[i].to_port || edgeData[i].type) return CUDA_ERROR_NOT_SUPPORTED;
  std::lock_guard<std::mutex> lock(g->mu);
  for (size_t i = 0; i < n; ++i) {
    auto a = registry().get<GraphNode>(from[i], Kind::GraphNode);
    auto b = registry().get<GraphNode>(to[i], Kind::GraphNode);
    if (!a || !b || a->graph != g.get() || b->graph != g.get() || a == b) return CUDA_ERROR_INVALID_VALUE;
    auto it = std::find(b->deps.begin(), b->deps.end(), a.get());
    if (add_edges) {
      if (it != b->deps.end()) return CUDA_ERROR_INVALID_VALUE;
      b->deps.push_back(a.get());
      a->dependents.push_back(b.get());
    } else {
      if (it == b->deps.end()) return CUDA_ERROR_INVALID_VALUE;
      b->deps.erase(it);
      a->dependents.erase(std::find(a->dependents.begin(), a->dependents.end(), b.get()));
    }
  }
  return CUDA_SUCCESS;
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddDependencies_v2(CUgraph hGraph, const CUgraphNode* from, const CUgraphNode* to,
                                                      const CUgraphEdgeData* edgeData, size_t numDependencies) {
  SIM_TRY return change_edges(hGraph, from, to, edgeData, numDependencies, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode* from, const CUgraphNode* to,
                                                   size_t numDependencies) {
  SIM_TRY return change_edges(hGraph, from, to, nullptr, numDependencies, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphRemoveDependencies_v2(CUgraph hGraph, const CUgraphNode* from,
                                                         const CUgraphNode* to, const CUgraphEdgeData* edgeData,
                                                         size_t numDependencies) {
  SIM_TRY return change_edges(hGraph, from, to, edgeData, numDependencies, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuGraphRemoveDependencies(CUgraph hGraph, const CUgraphNode* from, const CUgraphNode* to,
                                                      size_t numDependencies) {
  SIM_TRY return change_edges(hGraph, from, to, nullptr, numDependencies, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphDestroyNode(CUgraphNode hNode) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(hNode, n));
  Graph* g = n->graph;
  std::lock_guard<std::mutex> lock(g->mu);
  for (auto* d : n->deps) d->dependents.erase(std::find(d->dependents.begin(), d->dependents.end(), n.get()));
  for (auto* d : n->dependents) d->deps.erase(std::find(d->deps.begin(), d->deps.end(), n.get()));
  registry().remove(hNode, Kind::GraphNode);
  auto it = std::find_if(g->nodes.begin(), g->nodes.end(), [&](auto& p) { return p.get() == n.get(); });
  // The node's storage goes with the graph's: a stale handle then fails the registry lookup.
  if (it != g->nodes.end()) {
    static std::mutex graveyard_mu;
    static auto* graveyard = new std::vector<std::unique_ptr<GraphNode>>;
    std::lock_guard<std::mutex> glock(graveyard_mu);
    graveyard->push_back(std::move(*it));
    g->nodes.erase(it);
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphClone(CUgraph* phGraphClone, CUgraph originalGraph) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(originalGraph, g));
  if (!phGraphClone) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Graph> c;
  {
    std::lock_guard<std::mutex> lock(g->mu);
    c = g->clone();
  }
  c->publish();
  *phGraphClone = c->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphNodeFindInClone(CUgraphNode* phNode, CUgraphNode hOriginalNode,
                                                   CUgraph hClonedGraph) {
  SIM_TRY
  std::shared_ptr<GraphNode> orig;
  SIM_CHECK(lookup_node(hOriginalNode, orig));
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hClonedGraph, g));
  if (!phNode) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g->mu);
  if (orig->graph == g.get()) return CUDA_ERROR_INVALID_VALUE;
  for (auto& n : g->nodes)
    if (n->serial == orig->serial) {
      *phNode = n->handle();
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_VALUE;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphDebugDotPrint(CUgraph hGraph, const char* path, unsigned int flags) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(hGraph, g));
  if (!path) return CUDA_ERROR_INVALID_VALUE;
  FILE* f = std::fopen(path, "w");
  if (!f) return CUDA_ERROR_OPERATING_SYSTEM;
  static const char* names[] = {"KERNEL", "MEMCPY", "MEMSET", "HOST", "GRAPH", "EMPTY", "WAIT_EVENT",
                                "EVENT_RECORD", "EXT_SEMAS_SIGNAL", "EXT_SEMAS_WAIT", "MEM_ALLOC", "MEM_FREE",
                                "BATCH_MEM_OP", "CONDITIONAL"};
  std::lock_guard<std::mutex> lock(g->mu);
  std::fprintf(f, "digraph simgpu_graph {\n");
  for (auto& n : g->nodes) {
    const char* t = unsigned(n->type) < sizeof(names) / sizeof(*names) ? names[n->type] : "?";
    std::string label = t;
    if (auto* k = std::get_if<KernelWork>(&n->work)) label += "\\n" + k->fn->info->name;
    std::fprintf(f, "  n%llu [label=\"%s\"];\n", static_cast<unsigned long long>(n->serial), label.c_str());
  }
  for (auto& n : g->nodes)
    for (auto* d : n->dependents)
      std::fprintf(f, "  n%llu -> n%llu;\n", static_cast<unsigned long long>(n->serial),
                   static_cast<unsigned long long>(d->serial));
  std::fprintf(f, "}\n");
  std::fclose(f);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void* value) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(device, &d));
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  auto* v = static_cast<cuuint64_t*>(value);
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT: *v = d->graph_mem_used.load(); break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: *v = d->graph_mem_high.load(); break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void* value) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(device, &d));
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  if (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH && attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)
    return CUDA_ERROR_INVALID_VALUE;
  if (*static_cast<cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
  d->graph_mem_high.store(d->graph_mem_used.load());
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDeviceGraphMemTrim(CUdevice device) {
  SIM_TRY
  Device* d;
  return lookup_device(device, &d);  // graph memory is released with its graph: nothing is cached
  SIM_END
}

}  // extern "C"
