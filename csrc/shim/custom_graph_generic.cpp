// The generic graph-node API (cuGraphAddNode, cuGraphNodeSetParams,
// cuGraphExecNodeSetParams) taken apart into the per-type calls, each of
// which the proxy already forwards with its checks; and user objects.
#include "callbacks.h"
#include "custom.h"
#include "forward.h"
#include "graph_util.h"
#include "node_params.h"
#include "wire/opcodes.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

CUresult add_generic(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* edges, size_t n,
                     CUgraphNodeParams* p) {
  if (!p || p->reserved0[0] || p->reserved0[1] || p->reserved0[2] || p->reserved2) return CUDA_ERROR_INVALID_VALUE;
  // Edges other than the default one (programmatic ports) are not forwarded.
  if (edges && n)
    for (size_t i = 0; i < n; ++i)
      if (edges[i].from_port || edges[i].to_port || edges[i].type) return CUDA_ERROR_NOT_SUPPORTED;
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS k = sing::kernel_params_v2(p->kernel);
      return custom::cuGraphAddKernelNode_v2(out, g, deps, n, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      if (p->memcpy.flags || p->memcpy.reserved) return CUDA_ERROR_INVALID_VALUE;
      return custom::cuGraphAddMemcpyNode(out, g, deps, n, &p->memcpy.copyParams, p->memcpy.copyCtx);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS m = sing::memset_params_v1(p->memset);
      return custom::cuGraphAddMemsetNode(out, g, deps, n, &m, p->memset.ctx);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS h{p->host.fn, p->host.userData};
      return custom::cuGraphAddHostNode(out, g, deps, n, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
      // Moving a graph into its node would end the app's handle: not forwarded.
      if (p->graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE) return CUDA_ERROR_NOT_SUPPORTED;
      return custom::cuGraphAddChildGraphNode(out, g, deps, n, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_EMPTY:
      return custom::cuGraphAddEmptyNode(out, g, deps, n);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      return custom::cuGraphAddEventWaitNode(out, g, deps, n, p->eventWait.event);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
      return custom::cuGraphAddEventRecordNode(out, g, deps, n, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: {
      CUDA_MEM_ALLOC_NODE_PARAMS a{};
      a.poolProps = p->alloc.poolProps;
      a.accessDescs = p->alloc.accessDescs;
      a.accessDescCount = p->alloc.accessDescCount;
      a.bytesize = p->alloc.bytesize;
      CUresult r = custom::cuGraphAddMemAllocNode(out, g, deps, n, &a);
      if (r == CUDA_SUCCESS) p->alloc.dptr = a.dptr;
      return r;
    }
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
      return custom::cuGraphAddMemFreeNode(out, g, deps, n, p->free.dptr);
    default:
      return CUDA_ERROR_NOT_SUPPORTED;  // semaphores, batch memory operations, conditionals
  }
}

// The node's type decides which setter applies; a mismatch is the app's error.
CUresult set_generic(CUgraphExec x, CUgraphNode node, CUgraphNodeParams* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUgraphNodeType type;
  CUresult r = Forward<kOp_cuGraphNodeGetType, decltype(::cuGraphNodeGetType)>::sync(node, &type);
  if (r != CUDA_SUCCESS) return r;
  if (p->type != type) return CUDA_ERROR_INVALID_VALUE;
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS k = sing::kernel_params_v2(p->kernel);
      return x ? custom::cuGraphExecKernelNodeSetParams_v2(x, node, &k) : custom::cuGraphKernelNodeSetParams_v2(node, &k);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      return x ? custom::cuGraphExecMemcpyNodeSetParams(x, node, &p->memcpy.copyParams, p->memcpy.copyCtx)
               : custom::cuGraphMemcpyNodeSetParams(node, &p->memcpy.copyParams);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS m = sing::memset_params_v1(p->memset);
      return x ? custom::cuGraphExecMemsetNodeSetParams(x, node, &m, p->memset.ctx) : custom::cuGraphMemsetNodeSetParams(node, &m);
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS h{p->host.fn, p->host.userData};
      return x ? custom::cuGraphExecHostNodeSetParams(x, node, &h) : custom::cuGraphHostNodeSetParams(node, &h);
    }
    case CU_GRAPH_NODE_TYPE_GRAPH:
      if (!x) return CUDA_ERROR_NOT_SUPPORTED;  // a child graph is edited through its own handle
      return Forward<kOp_cuGraphExecChildGraphNodeSetParams, decltype(::cuGraphExecChildGraphNodeSetParams)>::sync(
          x, node, p->graph.graph);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      return x ? Forward<kOp_cuGraphExecEventWaitNodeSetEvent, decltype(::cuGraphExecEventWaitNodeSetEvent)>::sync(
                     x, node, p->eventWait.event)
               : Forward<kOp_cuGraphEventWaitNodeSetEvent, decltype(::cuGraphEventWaitNodeSetEvent)>::sync(
                     node, p->eventWait.event);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
      return x ? Forward<kOp_cuGraphExecEventRecordNodeSetEvent, decltype(::cuGraphExecEventRecordNodeSetEvent)>::sync(
                     x, node, p->eventRecord.event)
               : Forward<kOp_cuGraphEventRecordNodeSetEvent, decltype(::cuGraphEventRecordNodeSetEvent)>::sync(
                     node, p->eventRecord.event);
    default:
      return CUDA_ERROR_INVALID_VALUE;  // empty and memory nodes have nothing to set
  }
}

}  // namespace

CUresult cuGraphAddNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n, CUgraphNodeParams* p) {
  return add_generic(out, g, deps, nullptr, n, p);
}
CUresult cuGraphAddNode_v2(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* edges,
                           size_t n, CUgraphNodeParams* p) {
  return add_generic(out, g, deps, edges, n, p);
}
CUresult cuGraphNodeSetParams(CUgraphNode node, CUgraphNodeParams* p) { return set_generic(nullptr, node, p); }
CUresult cuGraphExecNodeSetParams(CUgraphExec x, CUgraphNode node, CUgraphNodeParams* p) {
  if (!x) return CUDA_ERROR_INVALID_VALUE;
  return set_generic(x, node, p);
}

// The destructor is the app's code: the proxy posts it to this process when
// the last reference goes (proxy user_objects.h).
CUresult cuUserObjectCreate(CUuserObject* out, void* ptr, CUhostFn destroy, unsigned int refs, unsigned int flags) {
  if (!out || !destroy) return CUDA_ERROR_INVALID_VALUE;
  ensure_callback_thread();
  Answer a = sync_call(kOp_cuUserObjectCreate, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(destroy));
    w.put<uint64_t>(reinterpret_cast<uint64_t>(ptr));
    w.put<uint32_t>(refs);
    w.put<uint32_t>(flags);
  });
  return take_handle(a, out);
}

}  // namespace sing::shim::custom
