// Stream capture calls that carry arrays of node ids: capture info with the
// capture's current dependencies, capture into an existing graph, and
// rewriting a capturing stream's dependencies.
#include <map>
#include <mutex>
#include <vector>

#include "custom.h"
#include "graph_util.h"
#include "wire/opcodes.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

// The driver hands out the dependency array of a capture by pointer, valid
// until the next call on that stream: kept here per stream.
struct CaptureView {
  std::vector<CUgraphNode> deps;
  std::vector<CUgraphEdgeData> edges;
};
std::mutex g_views_mu;
std::map<uint64_t, CaptureView>& views() {
  static auto* m = new std::map<uint64_t, CaptureView>;  // immortal: pointers may outlive main()
  return *m;
}

template <uint16_t Op>
CUresult capture_info(CUstream s, CUstreamCaptureStatus* status, cuuint64_t* id, CUgraph* graph,
                      const CUgraphNode** deps, const CUgraphEdgeData** edges, size_t* num) {
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(Op, [&](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(s)); });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  auto info = r.get<CaptureInfo>();
  if (!r.ok() || info.num_deps > kMaxGraphIds) return CUDA_ERROR_UNKNOWN;
  std::vector<CUgraphNode> ids(info.num_deps);
  for (auto& d : ids) {
    d = reinterpret_cast<CUgraphNode>(r.get<uint64_t>());
    if (d) handle_seen(reinterpret_cast<uint64_t>(d));
  }
  std::vector<CUgraphEdgeData> data(info.has_edges ? info.num_deps : 0);
  for (auto& e : data) e = r.get<CUgraphEdgeData>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *status = CUstreamCaptureStatus(info.status);
  if (info.status == CU_STREAM_CAPTURE_STATUS_NONE) return CUDA_SUCCESS;  // the other outputs are undefined
  if (info.graph) handle_seen(info.graph);
  if (id) *id = info.id;
  if (graph) *graph = reinterpret_cast<CUgraph>(info.graph);
  if (num) *num = info.num_deps;
  std::lock_guard<std::mutex> lock(g_views_mu);
  CaptureView& v = views()[reinterpret_cast<uint64_t>(s)];
  v.deps = std::move(ids);
  v.edges = std::move(data);
  if (deps) *deps = v.deps.empty() ? nullptr : v.deps.data();
  if (edges) *edges = v.edges.empty() ? nullptr : v.edges.data();
  return CUDA_SUCCESS;
}

template <uint16_t Op>
CUresult begin_to_graph(CUstream s, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* data, size_t n,
                        CUstreamCaptureMode mode) {
  if (!ids_ok(deps, n)) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(Op, [&](Writer& w) {
           w.put<uint64_t>(reinterpret_cast<uint64_t>(s));
           w.put<uint64_t>(reinterpret_cast<uint64_t>(g));
           w.put<uint64_t>(n);
           w.put<uint32_t>(uint32_t(mode));
           w.put<uint32_t>(data != nullptr);
           put_ids(w, deps, n);
           if (data && n) w.put(data, uint32_t(n * sizeof(CUgraphEdgeData)));
         }).result;
}

template <uint16_t Op>
CUresult update_deps(CUstream s, CUgraphNode* deps, const CUgraphEdgeData* data, size_t n, unsigned flags) {
  if (!ids_ok(deps, n)) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(Op, [&](Writer& w) {
           w.put<uint64_t>(reinterpret_cast<uint64_t>(s));
           w.put<uint64_t>(n);
           w.put<uint32_t>(flags);
           w.put<uint32_t>(data != nullptr);
           put_ids(w, deps, n);
           if (data && n) w.put(data, uint32_t(n * sizeof(CUgraphEdgeData)));
         }).result;
}

}  // namespace

CUresult cuStreamGetCaptureInfo_v2(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                   const CUgraphNode** deps, size_t* n) {
  return capture_info<kOp_cuStreamGetCaptureInfo_v2>(s, st, id, g, deps, nullptr, n);
}
CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                        const CUgraphNode** deps, size_t* n) {
  return capture_info<kOp_cuStreamGetCaptureInfo_v2_ptsz>(s, st, id, g, deps, nullptr, n);
}
CUresult cuStreamGetCaptureInfo_v3(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                   const CUgraphNode** deps, const CUgraphEdgeData** e, size_t* n) {
  return capture_info<kOp_cuStreamGetCaptureInfo_v3>(s, st, id, g, deps, e, n);
}
CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                        const CUgraphNode** deps, const CUgraphEdgeData** e, size_t* n) {
  return capture_info<kOp_cuStreamGetCaptureInfo_v3_ptsz>(s, st, id, g, deps, e, n);
}

CUresult cuStreamBeginCaptureToGraph(CUstream s, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* data,
                                     size_t n, CUstreamCaptureMode mode) {
  return begin_to_graph<kOp_cuStreamBeginCaptureToGraph>(s, g, deps, data, n, mode);
}
CUresult cuStreamBeginCaptureToGraph_ptsz(CUstream s, CUgraph g, const CUgraphNode* deps,
                                          const CUgraphEdgeData* data, size_t n, CUstreamCaptureMode mode) {
  return begin_to_graph<kOp_cuStreamBeginCaptureToGraph_ptsz>(s, g, deps, data, n, mode);
}

CUresult cuStreamUpdateCaptureDependencies(CUstream s, CUgraphNode* deps, size_t n, unsigned int flags) {
  return update_deps<kOp_cuStreamUpdateCaptureDependencies>(s, deps, nullptr, n, flags);
}
CUresult cuStreamUpdateCaptureDependencies_ptsz(CUstream s, CUgraphNode* deps, size_t n, unsigned int flags) {
  return update_deps<kOp_cuStreamUpdateCaptureDependencies_ptsz>(s, deps, nullptr, n, flags);
}
CUresult cuStreamUpdateCaptureDependencies_v2(CUstream s, CUgraphNode* deps, const CUgraphEdgeData* data, size_t n,
                                              unsigned int flags) {
  return update_deps<kOp_cuStreamUpdateCaptureDependencies_v2>(s, deps, data, n, flags);
}
CUresult cuStreamUpdateCaptureDependencies_v2_ptsz(CUstream s, CUgraphNode* deps, const CUgraphEdgeData* data,
                                                   size_t n, unsigned int flags) {
  return update_deps<kOp_cuStreamUpdateCaptureDependencies_v2_ptsz>(s, deps, data, n, flags);
}

}  // namespace sing::shim::custom
