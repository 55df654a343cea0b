#include "capture_node.h"

#include "backend.h"

namespace sing::proxy {

CUresult capture_point(CUstream stream, bool ptds, CUgraph* graph, std::vector<CUgraphNode>* deps) {
  CUstreamCaptureStatus st;
  const CUgraphNode* d = nullptr;
  size_t n = 0;
  auto f = ptds ? BACKEND(cuStreamGetCaptureInfo_v2_ptsz) : BACKEND(cuStreamGetCaptureInfo_v2);
  CUresult r = f(stream, &st, nullptr, graph, &d, &n);
  if (r != CUDA_SUCCESS) return r;
  if (st == CU_STREAM_CAPTURE_STATUS_INVALIDATED) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (st != CU_STREAM_CAPTURE_STATUS_ACTIVE) return CUDA_ERROR_ILLEGAL_STATE;
  deps->assign(d, d + n);
  return CUDA_SUCCESS;
}

CUresult capture_advance(CUstream stream, bool ptds, CUgraphNode node) {
  auto f = ptds ? BACKEND(cuStreamUpdateCaptureDependencies_ptsz) : BACKEND(cuStreamUpdateCaptureDependencies);
  return f(stream, &node, 1, CU_STREAM_SET_CAPTURE_DEPENDENCIES);
}

CUresult capture_empty_node(CUstream stream, bool ptds) {
  CUgraph graph;
  std::vector<CUgraphNode> deps;
  CUresult r = capture_point(stream, ptds, &graph, &deps);
  if (r != CUDA_SUCCESS) return r;
  CUgraphNode node;
  if ((r = BACKEND(cuGraphAddEmptyNode)(&node, graph, deps.data(), deps.size())) != CUDA_SUCCESS) return r;
  return capture_advance(stream, ptds, node);
}

}  // namespace sing::proxy
