// Node parameters: get and set on a graph's nodes, set on an executable's,
// and the emulated memory nodes' parameters (graph_memory.h).
#include <cstring>

#include "graph_memory.h"
#include "graph_node_params.h"
#include "graph_util.h"
#include "node_params.h"

namespace sing::proxy::custom {

namespace {

// Decodes {node} or {exec, node}, then the record (`rest`), checks the call
// is complete, then runs `run(exec, node)`.
template <bool Exec, class Rest, class Run>
CUresult on_node(Call& c, Rest rest, Run run) {
  CUgraphExec x = nullptr;
  CUgraphNode n = nullptr;
  CUresult r = CUDA_SUCCESS;
  if constexpr (Exec) r = decode_id(c, &x);
  CUresult e = decode_id(c, &n);
  if (r == CUDA_SUCCESS) r = e;
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  e = rest();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (e != CUDA_SUCCESS) return e;
  return run(x, n);
}

auto nothing = [] { return CUDA_SUCCESS; };

template <uint16_t Op>
CUresult get_kernel(Call& c) {
  return on_node<false>(c, nothing, [&](CUgraphExec, CUgraphNode n) {
    CUDA_KERNEL_NODE_PARAMS p{};
    CUresult r;
    if constexpr (Op == wire::kOp_cuGraphKernelNodeGetParams_v2) {
      r = BACKEND(cuGraphKernelNodeGetParams_v2)(n, &p);
    } else {
      CUDA_KERNEL_NODE_PARAMS_v1 v1{};
      r = BACKEND(cuGraphKernelNodeGetParams)(n, &v1);
      p = sing::kernel_params_from_v1(v1);
    }
    if (r != CUDA_SUCCESS) return r;
    return encode_kernel_node(c, p);
  });
}

template <uint16_t Op>
CUresult set_kernel(Call& c) {
  constexpr bool kExec = Op == wire::kOp_cuGraphExecKernelNodeSetParams ||
                         Op == wire::kOp_cuGraphExecKernelNodeSetParams_v2;
  KernelNode k;
  return on_node<kExec>(
      c, [&] { return decode_kernel_node(c, &k); },
      [&](CUgraphExec x, CUgraphNode n) {
        // Every ABI version of the setters takes the same parameters once
        // converted: the backend's current one is used.
        if constexpr (kExec) return BACKEND(cuGraphExecKernelNodeSetParams_v2)(x, n, &k.params);
        else return BACKEND(cuGraphKernelNodeSetParams_v2)(n, &k.params);
      });
}

}  // namespace

CUresult cuGraphKernelNodeGetParams(Call& c) { return get_kernel<wire::kOp_cuGraphKernelNodeGetParams>(c); }
CUresult cuGraphKernelNodeGetParams_v2(Call& c) { return get_kernel<wire::kOp_cuGraphKernelNodeGetParams_v2>(c); }
CUresult cuGraphKernelNodeSetParams(Call& c) { return set_kernel<wire::kOp_cuGraphKernelNodeSetParams>(c); }
CUresult cuGraphKernelNodeSetParams_v2(Call& c) { return set_kernel<wire::kOp_cuGraphKernelNodeSetParams_v2>(c); }
CUresult cuGraphExecKernelNodeSetParams(Call& c) { return set_kernel<wire::kOp_cuGraphExecKernelNodeSetParams>(c); }
CUresult cuGraphExecKernelNodeSetParams_v2(Call& c) {
  return set_kernel<wire::kOp_cuGraphExecKernelNodeSetParams_v2>(c);
}

CUresult cuGraphMemsetNodeGetParams(Call& c) {
  return on_node<false>(c, nothing, [&](CUgraphExec, CUgraphNode n) {
    CUDA_MEMSET_NODE_PARAMS p{};
    CUresult r = BACKEND(cuGraphMemsetNodeGetParams)(n, &p);
    if (r == CUDA_SUCCESS) c.out.put(p);
    return r;
  });
}
CUresult cuGraphMemsetNodeSetParams(Call& c) {
  CUDA_MEMSET_NODE_PARAMS p{};
  return on_node<false>(
      c, [&] { return decode_memset_node(c, &p, nullptr); },
      [&](CUgraphExec, CUgraphNode n) { return BACKEND(cuGraphMemsetNodeSetParams)(n, &p); });
}
CUresult cuGraphExecMemsetNodeSetParams(Call& c) {
  CUDA_MEMSET_NODE_PARAMS p{};
  CUcontext ctx = nullptr;
  return on_node<true>(
      c, [&] { return decode_memset_node(c, &p, &ctx); },
      [&](CUgraphExec x, CUgraphNode n) { return BACKEND(cuGraphExecMemsetNodeSetParams)(x, n, &p, ctx); });
}

CUresult cuGraphMemcpyNodeGetParams(Call& c) {
  return on_node<false>(c, nothing, [&](CUgraphExec, CUgraphNode n) {
    CUDA_MEMCPY3D p{};
    CUresult r = BACKEND(cuGraphMemcpyNodeGetParams)(n, &p);
    // Any array handle would be the backend's own: none is ever made.
    p.srcArray = p.dstArray = nullptr;
    if (r == CUDA_SUCCESS) c.out.put(p);
    return r;
  });
}
CUresult cuGraphMemcpyNodeSetParams(Call& c) {
  CUDA_MEMCPY3D p{};
  return on_node<false>(
      c, [&] { return decode_memcpy_node(c, &p, nullptr); },
      [&](CUgraphExec, CUgraphNode n) { return BACKEND(cuGraphMemcpyNodeSetParams)(n, &p); });
}
CUresult cuGraphExecMemcpyNodeSetParams(Call& c) {
  CUDA_MEMCPY3D p{};
  CUcontext ctx = nullptr;
  return on_node<true>(
      c, [&] { return decode_memcpy_node(c, &p, &ctx); },
      [&](CUgraphExec x, CUgraphNode n) { return BACKEND(cuGraphExecMemcpyNodeSetParams)(x, n, &p, ctx); });
}

CUresult cuGraphHostNodeGetParams(Call& c) {
  return on_node<false>(c, nothing, [&](CUgraphExec, CUgraphNode n) {
    CUDA_HOST_NODE_PARAMS p{};
    CUresult r = BACKEND(cuGraphHostNodeGetParams)(n, &p);
    if (r != CUDA_SUCCESS) return r;
    return encode_host_node(c, p);
  });
}
CUresult cuGraphHostNodeSetParams(Call& c) {
  CUDA_HOST_NODE_PARAMS p{};
  return on_node<false>(
      c, [&] { return decode_host_node(c, &p); },
      [&](CUgraphExec, CUgraphNode n) { return BACKEND(cuGraphHostNodeSetParams)(n, &p); });
}
CUresult cuGraphExecHostNodeSetParams(Call& c) {
  CUDA_HOST_NODE_PARAMS p{};
  return on_node<true>(
      c, [&] { return decode_host_node(c, &p); },
      [&](CUgraphExec x, CUgraphNode n) { return BACKEND(cuGraphExecHostNodeSetParams)(x, n, &p); });
}

// --- emulated memory nodes ---------------------------------------------

CUresult cuGraphMemAllocNodeGetParams(Call& c) {
  return on_node<false>(c, nothing, [&](CUgraphExec, CUgraphNode n) {
    EmulatedNode e;
    if (!graph_mem_node(c.client, n, &e) || e.type != CU_GRAPH_NODE_TYPE_MEM_ALLOC) return CUDA_ERROR_INVALID_VALUE;
    c.out.put(wire::MemAllocNodeRequest{e.bytes, e.access.size()});
    c.out.put(e.props);
    c.out.put<uint64_t>(e.dptr);
    for (auto& a : e.access) c.out.put(a);
    return CUDA_SUCCESS;
  });
}

CUresult cuGraphMemFreeNodeGetParams(Call& c) {
  Arg<CUgraphNode> node;
  Arg<CUdeviceptr*> out;
  CUresult r = decode_all(c, node, out);
  if (r != CUDA_SUCCESS) return r;
  EmulatedNode e;
  if (!out.present || !graph_mem_node(c.client, node.real, &e) || e.type != CU_GRAPH_NODE_TYPE_MEM_FREE)
    return CUDA_ERROR_INVALID_VALUE;
  out.local = e.dptr;
  encode_all(c, node, out);
  return CUDA_SUCCESS;
}

CUresult cuGraphNodeGetType(Call& c) {
  Arg<CUgraphNode> node;
  Arg<CUgraphNodeType*> type;
  CUresult r = decode_all(c, node, type);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuGraphNodeGetType)(node.real, type.pass())) != CUDA_SUCCESS) return r;
  EmulatedNode e;
  if (type.present && graph_mem_node(c.client, node.real, &e)) type.local = e.type;
  encode_all(c, node, type);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetGraphMemAttribute(Call& c) {
  const int32_t dev = c.in.get<int32_t>();
  const uint32_t attr = c.in.get<uint32_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  uint64_t v = 0;
  CUresult r = graph_mem_attribute(c.client, dev, attr, &v);
  if (r == CUDA_SUCCESS) c.out.put<uint64_t>(v);
  return r;
}

CUresult cuDeviceSetGraphMemAttribute(Call& c) {
  const int32_t dev = c.in.get<int32_t>();
  const uint32_t attr = c.in.get<uint32_t>();
  const uint64_t value = c.in.get<uint64_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  return graph_mem_reset_high(c.client, dev, attr, value);
}

// Graph memory is the client's heap memory, returned when its graphs go:
// nothing is cached to trim.  The backend still checks the device.
CUresult cuDeviceGraphMemTrim(Call& c) {
  Arg<CUdevice> dev;
  CUresult r = decode_all(c, dev);
  if (r != CUDA_SUCCESS) return r;
  return BACKEND(cuDeviceGraphMemTrim)(dev.v);
}

// --- kernel node attributes -------------------------------------------------

namespace {
// Attribute values are plain data but for these, which carry handles of the
// backend (events, device-side node handles) that the proxy does not map.
bool attr_forwarded(held_t<CUkernelNodeAttrID> id) {
  return id != CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT && id != CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT &&
         id != CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE;
}
}  // namespace

CUresult cuGraphKernelNodeGetAttribute(Call& c) {
  Arg<CUgraphNode> node;
  Arg<CUkernelNodeAttrID> attr;
  Arg<CUkernelNodeAttrValue*> value;
  CUresult r = decode_all(c, node, attr, value);
  if (r != CUDA_SUCCESS) return r;
  if (!attr_forwarded(attr.v)) return CUDA_ERROR_NOT_SUPPORTED;
  if ((r = BACKEND(cuGraphKernelNodeGetAttribute)(node.real, attr.v, value.pass())) != CUDA_SUCCESS) return r;
  encode_all(c, node, attr, value);
  return CUDA_SUCCESS;
}

CUresult cuGraphKernelNodeSetAttribute(Call& c) {
  Arg<CUgraphNode> node;
  Arg<CUkernelNodeAttrID> attr;
  Arg<const CUkernelNodeAttrValue*> value;
  CUresult r = decode_all(c, node, attr, value);
  if (r != CUDA_SUCCESS) return r;
  if (!attr_forwarded(attr.v)) return CUDA_ERROR_NOT_SUPPORTED;
  return BACKEND(cuGraphKernelNodeSetAttribute)(node.real, attr.v, value.pass());
}

// The generic node API is taken apart by the shim (custom_graph_generic.cpp)
// into the per-type calls above: a record of these opcodes comes from no shim.
CUresult cuGraphAddNode(Call&) { return CUDA_ERROR_INVALID_VALUE; }
CUresult cuGraphAddNode_v2(Call&) { return CUDA_ERROR_INVALID_VALUE; }
CUresult cuGraphNodeSetParams(Call&) { return CUDA_ERROR_INVALID_VALUE; }
CUresult cuGraphExecNodeSetParams(Call&) { return CUDA_ERROR_INVALID_VALUE; }

}  // namespace sing::proxy::custom
