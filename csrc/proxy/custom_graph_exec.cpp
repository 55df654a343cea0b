// Graph and executable lifetimes: clone, destroy, instantiate, update.  Each
// also keeps the emulated memory nodes' bookkeeping (graph_memory.h) in step,
// and a destroyed graph's node ids are forgotten with it.
#include <vector>

#include "graph_memory.h"
#include "graph_util.h"
#include "user_objects.h"

namespace sing::proxy::custom {

namespace {

// Every node id of a graph, so they can be forgotten when it goes.
std::vector<CUgraphNode> nodes_of(CUgraph g) {
  size_t n = 0;
  if (BACKEND(cuGraphGetNodes)(g, nullptr, &n) != CUDA_SUCCESS || n == 0) return {};
  std::vector<CUgraphNode> nodes(n);
  if (BACKEND(cuGraphGetNodes)(g, nodes.data(), &n) != CUDA_SUCCESS) return {};
  nodes.resize(std::min(n, nodes.size()));
  return nodes;
}

void forget_nodes(Client& c, const std::vector<CUgraphNode>& nodes) {
  for (CUgraphNode n : nodes) {
    uint64_t vid = reinterpret_cast<uint64_t>(to_app(c, n));
    c.handles.forget(HandleKind::GraphNode, vid);
  }
}

}  // namespace

CUresult cuGraphClone(Call& c) {
  Arg<CUgraph*> out;
  Arg<CUgraph> original;
  CUresult r = decode_all(c, out, original);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuGraphClone)(out.pass(), original.real)) != CUDA_SUCCESS) return r;
  if (out.present) {
    graph_mem_cloned(c.client, original.real, out.real);
    user_objects_copied(c.client, original.real, out.real);
  }
  encode_all(c, out, original);
  return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(Call& c) {
  Arg<CUgraph> g;
  CUresult r = decode_all(c, g);
  if (r != CUDA_SUCCESS) return r;
  if (!g.real) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUgraphNode> nodes = nodes_of(g.real);
  if ((r = BACKEND(cuGraphDestroy)(g.real)) != CUDA_SUCCESS) return r;
  forget_nodes(c.client, nodes);
  graph_mem_graph_gone(c.client, g.real);
  user_objects_dropped(c.client, g.real);
  forget(c.client, g.app);
  return CUDA_SUCCESS;
}

CUresult cuGraphDestroyNode(Call& c) {
  Arg<CUgraphNode> node;
  CUresult r = decode_all(c, node);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuGraphDestroyNode)(node.real)) != CUDA_SUCCESS) return r;
  graph_mem_node_gone(c.client, node.real);
  forget(c.client, node.app);
  return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(Call& c) {
  Arg<CUgraphExec*> out;
  Arg<CUgraph> g;
  Arg<unsigned long long> flags;
  CUresult r = decode_all(c, out, g, flags);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuGraphInstantiateWithFlags)(out.pass(), g.real, flags.v)) != CUDA_SUCCESS) return r;
  if (out.present) {
    graph_mem_instantiated(c.client, g.real, out.real);
    user_objects_copied(c.client, g.real, out.real);
    graph_exec_instantiated(c.client, g.real, out.real, flags.v);
  }
  encode_all(c, out, g, flags);
  return CUDA_SUCCESS;
}

namespace {
// {graph, flags, upload stream}; the answer {exec, error node, verdict} goes
// back even on failure (the verdict says why).
template <uint16_t Op>
CUresult instantiate_with_params(Call& c) {
  CUgraph g = nullptr;
  CUstream upload = nullptr;
  CUresult r = decode_id(c, &g);
  const uint64_t flags = c.in.get<uint64_t>();
  CUresult e = decode_id(c, &upload);
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (e != CUDA_SUCCESS) return e;
  CUDA_GRAPH_INSTANTIATE_PARAMS p{};
  p.flags = flags;
  p.hUploadStream = upload;
  CUgraphExec x = nullptr;
  auto fn = reinterpret_cast<decltype(&::cuGraphInstantiateWithParams)>(backend().fn[Op]);
  r = fn(&x, g, &p);
  if (r == CUDA_SUCCESS) {
    graph_mem_instantiated(c.client, g, x);
    user_objects_copied(c.client, g, x);
    graph_exec_instantiated(c.client, g, x, flags);
  }
  put_id(c, r == CUDA_SUCCESS ? x : nullptr);
  put_id(c, p.hErrNode_out);
  c.out.put<uint32_t>(uint32_t(p.result_out));
  c.output_on_error = true;
  return r;
}
}  // namespace

CUresult cuGraphInstantiateWithParams(Call& c) {
  return instantiate_with_params<wire::kOp_cuGraphInstantiateWithParams>(c);
}
CUresult cuGraphInstantiateWithParams_ptsz(Call& c) {
  return instantiate_with_params<wire::kOp_cuGraphInstantiateWithParams_ptsz>(c);
}

CUresult cuGraphExecDestroy(Call& c) {
  Arg<CUgraphExec> x;
  CUresult r = decode_all(c, x);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuGraphExecDestroy)(x.real)) != CUDA_SUCCESS) return r;
  graph_mem_exec_gone(c.client, x.real);
  user_objects_dropped(c.client, x.real);
  graph_exec_gone(c.client, reinterpret_cast<uint64_t>(x.app));
  forget(c.client, x.app);
  return CUDA_SUCCESS;
}

// An updated executable runs the new graph's parameters, addresses of its
// allocation nodes included: it holds that graph's memory from then on.
CUresult cuGraphExecUpdate(Call& c) {
  Arg<CUgraphExec> x;
  Arg<CUgraph> g;
  Arg<CUgraphNode*> err_node;
  Arg<CUgraphExecUpdateResult*> verdict;
  CUresult r = decode_all(c, x, g, err_node, verdict);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuGraphExecUpdate)(x.real, g.real, err_node.pass(), verdict.pass())) != CUDA_SUCCESS) return r;
  graph_mem_instantiated(c.client, g.real, x.real);
  encode_all(c, x, g, err_node, verdict);
  return CUDA_SUCCESS;
}

CUresult cuGraphExecUpdate_v2(Call& c) {
  CUgraphExec x = nullptr;
  CUgraph g = nullptr;
  CUresult r = decode_id(c, &x);
  CUresult e = decode_id(c, &g);
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (e != CUDA_SUCCESS) return e;
  CUgraphExecUpdateResultInfo info{};
  r = BACKEND(cuGraphExecUpdate_v2)(x, g, &info);
  if (r == CUDA_SUCCESS) graph_mem_instantiated(c.client, g, x);
  c.out.put<uint32_t>(uint32_t(info.result));
  put_id(c, info.errorNode);
  put_id(c, info.errorFromNode);
  c.output_on_error = true;
  return r;
}

CUresult cuGraphExecChildGraphNodeSetParams(Call& c) {
  Arg<CUgraphExec> x;
  Arg<CUgraphNode> node;
  Arg<CUgraph> child;
  CUresult r = decode_all(c, x, node, child);
  if (r != CUDA_SUCCESS) return r;
  if (graph_has_mem_nodes(c.client, child.real)) return CUDA_ERROR_NOT_SUPPORTED;  // as for cuGraphAddChildGraphNode
  return BACKEND(cuGraphExecChildGraphNodeSetParams)(x.real, node.real, child.real);
}

// --- user objects (user_objects.h) ------------------------------------------

CUresult cuUserObjectCreate(Call& c) {
  const uint64_t fn = c.in.get<uint64_t>();
  const uint64_t ptr = c.in.get<uint64_t>();
  const uint32_t refs = c.in.get<uint32_t>();
  const uint32_t flags = c.in.get<uint32_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  uint64_t vid = 0;
  CUresult r = user_object_create(c.client, fn, ptr, refs, flags, &vid);
  if (r == CUDA_SUCCESS) c.out.put<uint64_t>(vid);
  return r;
}

// The app's id is the object itself here: no backend handle to translate.
CUresult cuUserObjectRetain(Call& c) {
  const uint64_t vid = c.in.get<uint64_t>();
  const unsigned count = c.in.get<unsigned>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  return user_object_retain(c.client, vid, count);
}

CUresult cuUserObjectRelease(Call& c) {
  const uint64_t vid = c.in.get<uint64_t>();
  const unsigned count = c.in.get<unsigned>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  return user_object_release(c.client, vid, count);
}

CUresult cuGraphRetainUserObject(Call& c) {
  Arg<CUgraph> g;
  CUresult r = g.decode(c);
  const uint64_t vid = c.in.get<uint64_t>();
  const unsigned count = c.in.get<unsigned>();
  const unsigned flags = c.in.get<unsigned>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  return graph_retain_user_object(c.client, g.real, vid, count, flags);
}

CUresult cuGraphReleaseUserObject(Call& c) {
  Arg<CUgraph> g;
  CUresult r = g.decode(c);
  const uint64_t vid = c.in.get<uint64_t>();
  const unsigned count = c.in.get<unsigned>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  return graph_release_user_object(c.client, g.real, vid, count);
}

}  // namespace sing::proxy::custom
