// Stream capture calls with arrays of node ids, and the end of a capture
// (whose failure drops the capture graph's emulated memory nodes).
#include <vector>

#include "graph_memory.h"
#include "graph_util.h"
#include "user_objects.h"

namespace sing::proxy::custom {

namespace {

constexpr bool is_ptsz(uint16_t op) {
  return op == wire::kOp_cuStreamGetCaptureInfo_v2_ptsz || op == wire::kOp_cuStreamGetCaptureInfo_v3_ptsz ||
         op == wire::kOp_cuStreamBeginCaptureToGraph_ptsz || op == wire::kOp_cuStreamUpdateCaptureDependencies_ptsz ||
         op == wire::kOp_cuStreamUpdateCaptureDependencies_v2_ptsz || op == wire::kOp_cuStreamEndCapture_ptsz;
}

template <uint16_t Op>
CUresult capture_info(Call& c) {
  CUstream s = nullptr;
  CUresult r = decode_id(c, &s);
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  cuuint64_t id = 0;
  CUgraph g = nullptr;
  const CUgraphNode* deps = nullptr;
  const CUgraphEdgeData* edges = nullptr;
  size_t n = 0;
  constexpr bool kV3 = Op == wire::kOp_cuStreamGetCaptureInfo_v3 || Op == wire::kOp_cuStreamGetCaptureInfo_v3_ptsz;
  if constexpr (kV3) {
    auto fn = reinterpret_cast<decltype(&::cuStreamGetCaptureInfo_v3)>(backend().fn[Op]);
    r = fn(s, &st, &id, &g, &deps, &edges, &n);
  } else {
    auto fn = reinterpret_cast<decltype(&::cuStreamGetCaptureInfo_v2)>(backend().fn[Op]);
    r = fn(s, &st, &id, &g, &deps, &n);
  }
  if (r != CUDA_SUCCESS) return r;
  if (st == CU_STREAM_CAPTURE_STATUS_NONE) {
    c.out.put(wire::CaptureInfo{uint32_t(st), 0, 0, 0, 0});
    return CUDA_SUCCESS;
  }
  if (n > wire::kMaxGraphIds || (n && !deps)) return CUDA_ERROR_NOT_SUPPORTED;
  wire::CaptureInfo info{uint32_t(st), edges != nullptr, id, reinterpret_cast<uint64_t>(to_app(c.client, g)), n};
  c.out.put(info);
  for (size_t i = 0; i < n; ++i) put_id(c, deps[i]);
  if (edges)
    for (size_t i = 0; i < n; ++i) c.out.put(edges[i]);
  return CUDA_SUCCESS;
}

template <uint16_t Op>
CUresult begin_to_graph(Call& c) {
  CUstream s = nullptr;
  CUgraph g = nullptr;
  CUresult r = decode_id(c, &s);
  CUresult e = decode_id(c, &g);
  if (r == CUDA_SUCCESS) r = e;
  const uint64_t n = c.in.get<uint64_t>();
  const uint32_t mode = c.in.get<uint32_t>();
  const bool has_data = c.in.get<uint32_t>() != 0;
  std::vector<CUgraphNode> deps;
  e = decode_ids(c, n, &deps);
  if (r == CUDA_SUCCESS) r = e;
  std::vector<CUgraphEdgeData> data(has_data && n <= wire::kMaxGraphIds ? n : 0);
  for (auto& d : data) d = c.in.get<CUgraphEdgeData>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  auto fn = reinterpret_cast<decltype(&::cuStreamBeginCaptureToGraph)>(backend().fn[Op]);
  return fn(s, g, data_or_null(deps), has_data ? data_or_null(data) : nullptr, n, CUstreamCaptureMode(mode));
}

template <uint16_t Op>
CUresult update_deps(Call& c) {
  CUstream s = nullptr;
  CUresult r = decode_id(c, &s);
  const uint64_t n = c.in.get<uint64_t>();
  const uint32_t flags = c.in.get<uint32_t>();
  const bool has_data = c.in.get<uint32_t>() != 0;
  std::vector<CUgraphNode> deps;
  CUresult e = decode_ids(c, n, &deps);
  if (r == CUDA_SUCCESS) r = e;
  std::vector<CUgraphEdgeData> data(has_data && n <= wire::kMaxGraphIds ? n : 0);
  for (auto& d : data) d = c.in.get<CUgraphEdgeData>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if constexpr (Op == wire::kOp_cuStreamUpdateCaptureDependencies ||
                Op == wire::kOp_cuStreamUpdateCaptureDependencies_ptsz) {
    auto fn = reinterpret_cast<decltype(&::cuStreamUpdateCaptureDependencies)>(backend().fn[Op]);
    return fn(s, data_or_null(deps), n, flags);
  } else {
    auto fn = reinterpret_cast<decltype(&::cuStreamUpdateCaptureDependencies_v2)>(backend().fn[Op]);
    return fn(s, data_or_null(deps), has_data ? data_or_null(data) : nullptr, n, flags);
  }
}

// A failed capture takes its graph with it: so do the graph's emulated
// memory nodes and their memory.
template <uint16_t Op>
CUresult end_capture(Call& c) {
  Arg<CUstream> s;
  Arg<CUgraph*> out;
  CUresult r = decode_all(c, s, out);
  if (r != CUDA_SUCCESS) return r;
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  CUgraph capturing = nullptr;
  auto info = is_ptsz(Op) ? BACKEND(cuStreamGetCaptureInfo_v2_ptsz) : BACKEND(cuStreamGetCaptureInfo_v2);
  if (info(s.real, &st, nullptr, &capturing, nullptr, nullptr) != CUDA_SUCCESS) capturing = nullptr;
  auto fn = reinterpret_cast<decltype(&::cuStreamEndCapture)>(backend().fn[Op]);
  r = fn(s.real, out.pass());
  if (capturing && (r != CUDA_SUCCESS || !out.present || out.real != capturing)) {
    graph_mem_graph_gone(c.client, capturing);
    user_objects_dropped(c.client, capturing);
  }
  if (r != CUDA_SUCCESS) return r;
  encode_all(c, s, out);
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace sing::proxy::custom

PROXY_TWIN(cuStreamGetCaptureInfo_v2, cuStreamGetCaptureInfo_v2_ptsz, capture_info)
PROXY_TWIN(cuStreamGetCaptureInfo_v3, cuStreamGetCaptureInfo_v3_ptsz, capture_info)
PROXY_TWIN(cuStreamBeginCaptureToGraph, cuStreamBeginCaptureToGraph_ptsz, begin_to_graph)
PROXY_TWIN(cuStreamUpdateCaptureDependencies, cuStreamUpdateCaptureDependencies_ptsz, update_deps)
PROXY_TWIN(cuStreamUpdateCaptureDependencies_v2, cuStreamUpdateCaptureDependencies_v2_ptsz, update_deps)
PROXY_TWIN(cuStreamEndCapture, cuStreamEndCapture_ptsz, end_capture)
