// The generic graph-node API (cuGraphAddNode, cuGraphNodeSetParams,
// cuGraphExecNodeSetParams), kernel-node attributes, and user objects.
#include "graph.h"
#include "launch.h"
#include "node_params.h"

#include <thread>

namespace simgpu {

void UserObject::release(unsigned n) {
  if (refs.fetch_sub(n) != (long long)n) return;
  // The destructor may block, and may not call CUDA: it runs on its own thread.
  CUhostFn fn = destroy;
  void* p = ptr;
  std::thread([fn, p] {
    tls().in_host_callback = true;
    fn(p);
  }).detach();
  registry().remove(this, Kind::UserObject);
}

namespace {

CUresult lookup_user_object(CUuserObject h, std::shared_ptr<UserObject>& out) {
  SIM_CHECK(check_init());
  out = registry().get<UserObject>(h, Kind::UserObject);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult check_edges(const CUgraphEdgeData* edges, size_t n) {
  if (edges)
    for (size_t i = 0; i < n; ++i)
      if (edges[i].from_port || edges[i].to_port || edges[i].type) return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

CUresult add_generic(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* edges, size_t n,
                     CUgraphNodeParams* p) {
  SIM_CHECK(check_init());
  if (!p || p->reserved0[0] || p->reserved0[1] || p->reserved0[2] || p->reserved2) return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(check_edges(edges, n));
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS k = sing::kernel_params_v2(p->kernel);
      return cuGraphAddKernelNode_v2(out, g, deps, n, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      if (p->memcpy.flags || p->memcpy.reserved) return CUDA_ERROR_INVALID_VALUE;
      return cuGraphAddMemcpyNode(out, g, deps, n, &p->memcpy.copyParams, p->memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS m = sing::memset_params_v1(p->memset);
      return cuGraphAddMemsetNode(out, g, deps, n, &m, p->memset.ctx);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS h{p->host.fn, p->host.userData};
      return cuGraphAddHostNode(out, g, deps, n, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
      if (p->graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE) return CUDA_ERROR_NOT_SUPPORTED;
      return cuGraphAddChildGraphNode(out, g, deps, n, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_EMPTY: return cuGraphAddEmptyNode(out, g, deps, n);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT: return cuGraphAddEventWaitNode(out, g, deps, n, p->eventWait.event);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD: return cuGraphAddEventRecordNode(out, g, deps, n, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: {
      CUDA_MEM_ALLOC_NODE_PARAMS a{};
      a.poolProps = p->alloc.poolProps;
      a.accessDescs = p->alloc.accessDescs;
      a.accessDescCount = p->alloc.accessDescCount;
      a.bytesize = p->alloc.bytesize;
      SIM_CHECK(cuGraphAddMemAllocNode(out, g, deps, n, &a));
      p->alloc.dptr = a.dptr;
      return CUDA_SUCCESS;
    }
    case CU_GRAPH_NODE_TYPE_MEM_FREE: return cuGraphAddMemFreeNode(out, g, deps, n, p->free.dptr);
    default: return CUDA_ERROR_NOT_SUPPORTED;  // semaphores, batch mem ops, conditionals
  }
}

CUresult set_generic(CUgraphNode node, CUgraphNodeParams* p, CUgraphExec exec) {
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(lookup_node(node, n));
  if (!p || p->type != n->type) return CUDA_ERROR_INVALID_VALUE;
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS k = sing::kernel_params_v2(p->kernel);
      return exec ? cuGraphExecKernelNodeSetParams_v2(exec, node, &k) : cuGraphKernelNodeSetParams_v2(node, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      return exec ? cuGraphExecMemcpyNodeSetParams(exec, node, &p->memcpy.copyParams, p->memcpy.copyCtx)
                  : cuGraphMemcpyNodeSetParams(node, &p->memcpy.copyParams);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS m = sing::memset_params_v1(p->memset);
      return exec ? cuGraphExecMemsetNodeSetParams(exec, node, &m, p->memset.ctx) : cuGraphMemsetNodeSetParams(node, &m);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS h{p->host.fn, p->host.userData};
      return exec ? cuGraphExecHostNodeSetParams(exec, node, &h) : cuGraphHostNodeSetParams(node, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
      if (!exec) return CUDA_ERROR_NOT_SUPPORTED;  // a child graph is edited through its own handle
      return cuGraphExecChildGraphNodeSetParams(exec, node, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      return exec ? cuGraphExecEventWaitNodeSetEvent(exec, node, p->eventWait.event)
                  : cuGraphEventWaitNodeSetEvent(node, p->eventWait.event);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
      return exec ? cuGraphExecEventRecordNodeSetEvent(exec, node, p->eventRecord.event)
                  : cuGraphEventRecordNodeSetEvent(node, p->eventRecord.event);
    default: return CUDA_ERROR_INVALID_VALUE;  // empty and memory nodes have nothing to set
  }
}

CUresult kernel_node(CUgraphNode h, std::shared_ptr<GraphNode>& n) {
  SIM_CHECK(lookup_node(h, n));
  return n->type == CU_GRAPH_NODE_TYPE_KERNEL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuGraphAddNode_v2(CUgraphNode* phGraphNode, CUgraph hGraph,
                                              const CUgraphNode* dependencies, const CUgraphEdgeData* dependencyData,
                                              size_t numDependencies, CUgraphNodeParams* nodeParams) {
  SIM_TRY return add_generic(phGraphNode, hGraph, dependencies, dependencyData, numDependencies, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphAddNode(CUgraphNode* phGraphNode, CUgraph hGraph, const CUgraphNode* dependencies,
                                           size_t numDependencies, CUgraphNodeParams* nodeParams) {
  SIM_TRY return add_generic(phGraphNode, hGraph, dependencies, nullptr, numDependencies, nodeParams);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphNodeSetParams(CUgraphNode hNode, CUgraphNodeParams* nodeParams) {
  SIM_TRY return set_generic(hNode, nodeParams, nullptr);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphExecNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode,
                                                     CUgraphNodeParams* nodeParams) {
  SIM_TRY
  if (!hGraphExec) return CUDA_ERROR_INVALID_VALUE;
  return set_generic(hNode, nodeParams, hGraphExec);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeGetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                                          CUkernelNodeAttrValue* value_out) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(kernel_node(hNode, n));
  if (!value_out) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  *value_out = CUkernelNodeAttrValue{};
  for (auto& [id, v] : n->attrs)
    if (id == int(attr)) *value_out = v;
  switch (attr) {
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
      value_out->cooperative = std::get<KernelWork>(n->work).cooperative ? 1 : 0;
      break;
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
      if (!value_out->clusterDim.x) value_out->clusterDim.x = value_out->clusterDim.y = value_out->clusterDim.z = 1;
      break;
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeSetAttribute(CUgraphNode hNode, CUkernelNodeAttrID attr,
                                                          const CUkernelNodeAttrValue* value) {
  SIM_TRY
  std::shared_ptr<GraphNode> n;
  SIM_CHECK(kernel_node(hNode, n));
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(n->graph->mu);
  auto& k = std::get<KernelWork>(n->work);
  switch (attr) {
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
      if (value->cooperative) {
        int per_sm = blocks_per_sm(*k.fn->info, int(k.block.count()), k.shared_bytes);
        if (k.grid.count() > uint64_t(per_sm) * uint64_t(h100::kSmCount)) return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
      }
      k.cooperative = value->cooperative != 0;
      break;
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
      if (value->clusterDim.x != 1 || value->clusterDim.y != 1 || value->clusterDim.z != 1)
        return CUDA_ERROR_NOT_SUPPORTED;  // clusters are not simulated
      break;
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: break;  // tuning only: kept, no effect
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  for (auto& [id, v] : n->attrs)
    if (id == int(attr)) {
      v = *value;
      return CUDA_SUCCESS;
    }
  n->attrs.emplace_back(int(attr), *value);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src) {
  SIM_TRY
  std::shared_ptr<GraphNode> d, s;
  SIM_CHECK(kernel_node(dst, d));
  SIM_CHECK(kernel_node(src, s));
  if (d->graph != s->graph) {
    // Two graphs: lock both in a fixed order.
    std::scoped_lock lock(d->graph->mu, s->graph->mu);
    d->attrs = s->attrs;
    std::get<KernelWork>(d->work).cooperative = std::get<KernelWork>(s->work).cooperative;
  } else {
    std::lock_guard<std::mutex> lock(d->graph->mu);
    d->attrs = s->attrs;
    std::get<KernelWork>(d->work).cooperative = std::get<KernelWork>(s->work).cooperative;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuUserObjectCreate(CUuserObject* object_out, void* ptr, CUhostFn destroy,
                                               unsigned int initialRefcount, unsigned int flags) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!object_out || !destroy || initialRefcount == 0 || flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC)
    return CUDA_ERROR_INVALID_VALUE;
  auto o = std::make_shared<UserObject>();
  o->ptr = ptr;
  o->destroy = destroy;
  o->refs.store(initialRefcount);
  registry().add(o.get(), o);
  *object_out = o->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuUserObjectRetain(CUuserObject object, unsigned int count) {
  SIM_TRY
  std::shared_ptr<UserObject> o;
  SIM_CHECK(lookup_user_object(object, o));
  if (count == 0) return CUDA_ERROR_INVALID_VALUE;
  o->retain(count);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuUserObjectRelease(CUuserObject object, unsigned int count) {
  SIM_TRY
  std::shared_ptr<UserObject> o;
  SIM_CHECK(lookup_user_object(object, o));
  if (count == 0 || (long long)count > o->refs.load()) return CUDA_ERROR_INVALID_VALUE;
  o->release(count);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphRetainUserObject(CUgraph graph, CUuserObject object, unsigned int count,
                                                    unsigned int flags) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(graph, g));
  std::shared_ptr<UserObject> o;
  SIM_CHECK(lookup_user_object(object, o));
  if (count == 0 || (flags & ~unsigned(CU_GRAPH_USER_OBJECT_MOVE))) return CUDA_ERROR_INVALID_VALUE;
  // MOVE: the caller's references become the graph's; otherwise the graph takes new ones.
  if (!(flags & CU_GRAPH_USER_OBJECT_MOVE)) o->retain(count);
  std::lock_guard<std::mutex> lock(g->mu);
  for (auto& [obj, n] : g->user_refs)
    if (obj == o) {
      n += count;
      return CUDA_SUCCESS;
    }
  g->user_refs.emplace_back(o, count);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuGraphReleaseUserObject(CUgraph graph, CUuserObject object, unsigned int count) {
  SIM_TRY
  std::shared_ptr<Graph> g;
  SIM_CHECK(lookup_graph(graph, g));
  std::shared_ptr<UserObject> o;
  SIM_CHECK(lookup_user_object(object, o));
  if (count == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(g->mu);
  for (auto it = g->user_refs.begin(); it != g->user_refs.end(); ++it) {
    if (it->first != o) continue;
    if (count > it->second) return CUDA_ERROR_INVALID_VALUE;
    it->second -= count;
    if (it->second == 0) g->user_refs.erase(it);
    o->release(count);
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;
  SIM_END
}

}  // extern "C"
