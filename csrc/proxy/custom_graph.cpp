// Graph construction and topology: node additions (with every handle and
// device address checked against the client), edges, the array queries, the
// DOT dump.  Node parameters, executables and graph lifetimes are in
// custom_graph_params.cpp and custom_graph_exec.cpp.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "graph_memory.h"
#include "graph_node_params.h"
#include "graph_util.h"
#include "hostfn.h"
#include "log.h"

namespace sing::proxy::custom {

namespace {

// The head of every node addition: the graph and its dependencies.
struct NodeAdd {
  CUgraph graph = nullptr;
  std::vector<CUgraphNode> deps;
};

CUresult decode_add(Call& c, NodeAdd* a) {
  auto head = c.in.get<wire::GraphNodeAdd>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = to_real(c.client, reinterpret_cast<CUgraph>(head.graph), &a->graph);
  CUresult e = decode_ids(c, head.num_deps, &a->deps);
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  return r != CUDA_SUCCESS ? r : e;
}

// Decodes the head, then the node's own record (`rest`), and answers the new
// node's id.  `add(graph, deps, n, &node)` calls the backend.
template <class Rest, class Add>
CUresult add_node(Call& c, Rest rest, Add add) {
  NodeAdd a;
  CUresult r = decode_add(c, &a);
  CUresult e = rest();  // decoded whatever the head said: the record must be well formed
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (e != CUDA_SUCCESS) return e;
  CUgraphNode node = nullptr;
  if ((r = add(a.graph, data_or_null(a.deps), a.deps.size(), &node)) != CUDA_SUCCESS) return r;
  put_id(c, node);
  return CUDA_SUCCESS;
}

auto nothing = [] { return CUDA_SUCCESS; };

}  // namespace

CUresult cuGraphAddEmptyNode(Call& c) {
  return add_node(c, nothing, [](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
    return BACKEND(cuGraphAddEmptyNode)(out, g, d, n);
  });
}

namespace {
template <bool Record>
CUresult event_node(Call& c) {
  CUevent ev = nullptr;
  return add_node(
      c, [&] { return decode_id(c, &ev); },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return Record ? BACKEND(cuGraphAddEventRecordNode)(out, g, d, n, ev)
                      : BACKEND(cuGraphAddEventWaitNode)(out, g, d, n, ev);
      });
}
}  // namespace

CUresult cuGraphAddEventRecordNode(Call& c) { return event_node<true>(c); }
CUresult cuGraphAddEventWaitNode(Call& c) { return event_node<false>(c); }

CUresult cuGraphAddChildGraphNode(Call& c) {
  CUgraph child = nullptr;
  return add_node(
      c, [&] { return decode_id(c, &child); },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        // Memory nodes may not be in a child graph (the driver's rule): ours
        // are empty nodes to the backend, so the proxy says it.
        if (graph_has_mem_nodes(c.client, child)) return CUDA_ERROR_NOT_SUPPORTED;
        return BACKEND(cuGraphAddChildGraphNode)(out, g, d, n, child);
      });
}

CUresult cuGraphAddMemsetNode(Call& c) {
  CUDA_MEMSET_NODE_PARAMS p{};
  CUcontext ctx = nullptr;
  return add_node(
      c, [&] { return decode_memset_node(c, &p, &ctx); },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return BACKEND(cuGraphAddMemsetNode)(out, g, d, n, &p, ctx);
      });
}

CUresult cuGraphAddMemcpyNode(Call& c) {
  CUDA_MEMCPY3D p{};
  CUcontext ctx = nullptr;
  return add_node(
      c, [&] { return decode_memcpy_node(c, &p, &ctx); },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return BACKEND(cuGraphAddMemcpyNode)(out, g, d, n, &p, ctx);
      });
}

CUresult cuGraphAddHostNode(Call& c) {
  CUDA_HOST_NODE_PARAMS p{};
  return add_node(
      c, [&] { return decode_host_node(c, &p); },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return BACKEND(cuGraphAddHostNode)(out, g, d, n, &p);
      });
}

namespace {
CUresult kernel_node(Call& c) {
  KernelNode k;
  return add_node(
      c, [&] { return decode_kernel_node(c, &k); },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return BACKEND(cuGraphAddKernelNode_v2)(out, g, d, n, &k.params);
      });
}
}  // namespace

CUresult cuGraphAddKernelNode(Call& c) { return kernel_node(c); }
CUresult cuGraphAddKernelNode_v2(Call& c) { return kernel_node(c); }

CUresult cuGraphAddMemAllocNode(Call& c) {
  auto req = wire::MemAllocNodeRequest{};
  CUmemPoolProps props{};
  std::vector<CUmemAccessDesc> access;
  uint64_t dptr = 0;
  CUresult r = add_node(
      c,
      [&] {
        req = c.in.get<wire::MemAllocNodeRequest>();
        props = c.in.get<CUmemPoolProps>();
        if (!c.in.ok() || req.num_access > 64) return CUDA_ERROR_INVALID_VALUE;
        access.resize(req.num_access);
        for (auto& a : access) a = c.in.get<CUmemAccessDesc>();
        return CUDA_SUCCESS;
      },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return graph_mem_alloc_node(c.client, g, d, n, props, req.bytes, access, out, &dptr);
      });
  if (r == CUDA_SUCCESS) c.out.put<uint64_t>(dptr);
  return r;
}

CUresult cuGraphAddMemFreeNode(Call& c) {
  uint64_t dptr = 0;
  return add_node(
      c,
      [&] {
        dptr = c.in.get<uint64_t>();
        return CUDA_SUCCESS;
      },
      [&](CUgraph g, const CUgraphNode* d, size_t n, CUgraphNode* out) {
        return graph_mem_free_node(c.client, g, d, n, dptr, out);
      });
}

// --- edges -------------------------------------------------------------

namespace {
template <uint16_t Op>
CUresult change_edges(Call& c) {
  CUgraph g = nullptr;
  CUresult r = decode_id(c, &g);
  const uint64_t n = c.in.get<uint64_t>();
  const bool has_data = c.in.get<uint32_t>() != 0;
  std::vector<CUgraphNode> from, to;
  CUresult e1 = decode_ids(c, n, &from);
  CUresult e2 = decode_ids(c, n, &to);
  std::vector<CUgraphEdgeData> data(has_data ? n : 0);
  for (auto& d : data) d = c.in.get<CUgraphEdgeData>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (e1 != CUDA_SUCCESS) return e1;
  if (e2 != CUDA_SUCCESS) return e2;
  if constexpr (Op == wire::kOp_cuGraphAddDependencies)
    return BACKEND(cuGraphAddDependencies)(g, data_or_null(from), data_or_null(to), n);
  else if constexpr (Op == wire::kOp_cuGraphRemoveDependencies)
    return BACKEND(cuGraphRemoveDependencies)(g, data_or_null(from), data_or_null(to), n);
  else if constexpr (Op == wire::kOp_cuGraphAddDependencies_v2)
    return BACKEND(cuGraphAddDependencies_v2)(g, data_or_null(from), data_or_null(to),
                                              has_data ? data_or_null(data) : nullptr, n);
  else
    return BACKEND(cuGraphRemoveDependencies_v2)(g, data_or_null(from), data_or_null(to),
                                                 has_data ? data_or_null(data) : nullptr, n);
}
}  // namespace

CUresult cuGraphAddDependencies(Call& c) { return change_edges<wire::kOp_cuGraphAddDependencies>(c); }
CUresult cuGraphAddDependencies_v2(Call& c) { return change_edges<wire::kOp_cuGraphAddDependencies_v2>(c); }
CUresult cuGraphRemoveDependencies(Call& c) { return change_edges<wire::kOp_cuGraphRemoveDependencies>(c); }
CUresult cuGraphRemoveDependencies_v2(Call& c) { return change_edges<wire::kOp_cuGraphRemoveDependencies_v2>(c); }

// --- array queries -----------------------------------------------------

namespace {
// Decodes the handle the query is about, then answers the page.
template <class H, class Query>
CUresult list_of(Call& c, Query q) {
  H h = nullptr;
  CUresult r = decode_id(c, &h);
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) {
    c.in.get<wire::ListRequest>();
    return r;
  }
  return list_answer(c, [&](CUgraphNode* a, CUgraphNode* b, CUgraphEdgeData* e, size_t* n) { return q(h, a, b, e, n); });
}
}  // namespace

CUresult cuGraphGetNodes(Call& c) {
  return list_of<CUgraph>(c, [](CUgraph g, CUgraphNode* a, CUgraphNode*, CUgraphEdgeData*, size_t* n) {
    return BACKEND(cuGraphGetNodes)(g, a, n);
  });
}
CUresult cuGraphGetRootNodes(Call& c) {
  return list_of<CUgraph>(c, [](CUgraph g, CUgraphNode* a, CUgraphNode*, CUgraphEdgeData*, size_t* n) {
    return BACKEND(cuGraphGetRootNodes)(g, a, n);
  });
}
CUresult cuGraphGetEdges(Call& c) {
  return list_of<CUgraph>(c, [](CUgraph g, CUgraphNode* a, CUgraphNode* b, CUgraphEdgeData*, size_t* n) {
    return BACKEND(cuGraphGetEdges)(g, a, b, n);
  });
}
CUresult cuGraphGetEdges_v2(Call& c) {
  return list_of<CUgraph>(c, [](CUgraph g, CUgraphNode* a, CUgraphNode* b, CUgraphEdgeData* e, size_t* n) {
    return BACKEND(cuGraphGetEdges_v2)(g, a, b, e, n);
  });
}
CUresult cuGraphNodeGetDependencies(Call& c) {
  return list_of<CUgraphNode>(c, [](CUgraphNode x, CUgraphNode* a, CUgraphNode*, CUgraphEdgeData*, size_t* n) {
    return BACKEND(cuGraphNodeGetDependencies)(x, a, n);
  });
}
CUresult cuGraphNodeGetDependencies_v2(Call& c) {
  return list_of<CUgraphNode>(c, [](CUgraphNode x, CUgraphNode* a, CUgraphNode*, CUgraphEdgeData* e, size_t* n) {
    return BACKEND(cuGraphNodeGetDependencies_v2)(x, a, e, n);
  });
}
CUresult cuGraphNodeGetDependentNodes(Call& c) {
  return list_of<CUgraphNode>(c, [](CUgraphNode x, CUgraphNode* a, CUgraphNode*, CUgraphEdgeData*, size_t* n) {
    return BACKEND(cuGraphNodeGetDependentNodes)(x, a, n);
  });
}
CUresult cuGraphNodeGetDependentNodes_v2(Call& c) {
  return list_of<CUgraphNode>(c, [](CUgraphNode x, CUgraphNode* a, CUgraphNode*, CUgraphEdgeData* e, size_t* n) {
    return BACKEND(cuGraphNodeGetDependentNodes_v2)(x, a, e, n);
  });
}

// The backend writes the DOT text into a memfd of the proxy; the text goes
// back to the shim, which writes the app's file.
CUresult cuGraphDebugDotPrint(Call& c) {
  CUgraph g = nullptr;
  CUresult r = decode_id(c, &g);
  const uint32_t flags = c.in.get<uint32_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  int fd = memfd_create("singularity-dot", MFD_CLOEXEC);
  if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  r = BACKEND(cuGraphDebugDotPrint)(g, path, flags);
  if (r == CUDA_SUCCESS) {
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
      r = CUDA_ERROR_OPERATING_SYSTEM;
    } else if (uint64_t(size) > wire::kResponseBytes - 64) {
      log_error("client %u: DOT output of %lld bytes exceeds the response area", c.client.id(),
                static_cast<long long>(size));
      r = CUDA_ERROR_NOT_SUPPORTED;
    } else {
      std::vector<uint8_t> text(static_cast<size_t>(size));
      if (pread(fd, text.data(), text.size(), 0) != ssize_t(text.size())) {
        r = CUDA_ERROR_OPERATING_SYSTEM;
      } else {
        c.out.put<uint64_t>(text.size());
        if (!text.empty()) c.out.put(text.data(), uint32_t(text.size()));
      }
    }
  }
  close(fd);
  return r;
}

}  // namespace sing::proxy::custom
