// Decoding shared by the proxy's graph and capture handlers: arrays of app
// ids translated to backend handles, the paged array answers, and the checks
// on the memory a memset or memcpy node will touch when the graph runs.
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "guards.h"
#include "handler_util.h"
#include "wire/graph.h"

namespace sing::proxy {

// n app ids of type H, each translated; the first unknown one is the error.
template <class H>
CUresult decode_ids(Call& c, uint64_t n, std::vector<H>* out) {
  if (n > wire::kMaxGraphIds) return CUDA_ERROR_INVALID_VALUE;
  out->resize(n);
  const uint8_t* p = n ? c.in.take(uint32_t(n * sizeof(uint64_t))) : nullptr;
  if (n && !p) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = CUDA_SUCCESS;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t id;
    std::memcpy(&id, p + i * sizeof(uint64_t), sizeof(id));
    // A null id is no handle at all: never a valid dependency.
    if (id == 0 && r == CUDA_SUCCESS) r = CUDA_ERROR_INVALID_VALUE;
    CUresult e = to_real(c.client, reinterpret_cast<H>(id), &(*out)[i]);
    if (r == CUDA_SUCCESS) r = e;
  }
  return r;
}

template <class H>
CUresult decode_id(Call& c, H* real) {
  return to_real(c.client, reinterpret_cast<H>(c.in.get<uint64_t>()), real);
}

template <class H>
void put_id(Call& c, H real) {
  c.out.put<uint64_t>(reinterpret_cast<uint64_t>(to_app(c.client, real)));
}

template <class T>
T* data_or_null(std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}

// Runs a query that fills arrays of node ids (wire::ListRequest) and answers
// one page.  `query(first, second, edges, &num)` calls the backend.
template <class Query>
CUresult list_answer(Call& c, Query query) {
  auto req = c.in.get<wire::ListRequest>();
  if (!c.in.ok() || !c.in.at_end() || req.offset > req.capacity) return CUDA_ERROR_INVALID_VALUE;
  const bool first = req.arrays & wire::kListFirst, second = req.arrays & wire::kListSecond,
             edges = req.arrays & wire::kListEdgeData;
  if (!first && !second && !edges) {
    size_t num = req.capacity;
    CUresult r = query(nullptr, nullptr, nullptr, &num);
    if (r != CUDA_SUCCESS) return r;
    c.out.put(wire::ListAnswer{num, 0});
    return CUDA_SUCCESS;
  }
  // The app's capacity may be anything; the backend is asked with no more
  // than there are entries, which it answers the same way (the rest null).
  size_t total = 0;
  CUresult r = query(nullptr, nullptr, nullptr, &total);
  if (r != CUDA_SUCCESS) return r;
  const uint64_t filled = std::min<uint64_t>(req.capacity, total);
  std::vector<CUgraphNode> a(first ? filled : 0), b(second ? filled : 0);
  std::vector<CUgraphEdgeData> e(edges ? filled : 0);
  size_t num = filled;
  // Arrays of size 0 still tell the backend they were passed.
  CUgraphNode dummy_a = nullptr, dummy_b = nullptr;
  CUgraphEdgeData dummy_e{};
  r = query(first ? (filled ? a.data() : &dummy_a) : nullptr, second ? (filled ? b.data() : &dummy_b) : nullptr,
            edges ? (filled ? e.data() : &dummy_e) : nullptr, &num);
  if (r != CUDA_SUCCESS) return r;
  const uint64_t per_entry = 8 * (uint64_t(first) + uint64_t(second)) + (edges ? sizeof(CUgraphEdgeData) : 0);
  const uint64_t page = (wire::kResponseBytes - 64) / per_entry;
  const uint64_t count = std::min(req.capacity - req.offset, page);
  c.out.put(wire::ListAnswer{uint64_t(num), count});
  for (auto* arr : {first ? &a : nullptr, second ? &b : nullptr}) {
    if (!arr) continue;
    for (uint64_t i = req.offset; i < req.offset + count; ++i) put_id<CUgraphNode>(c, i < filled ? (*arr)[i] : nullptr);
  }
  if (edges)
    for (uint64_t i = req.offset; i < req.offset + count; ++i) c.out.put(i < filled ? e[i] : CUgraphEdgeData{});
  return CUDA_SUCCESS;
}

// What a memset node writes must be this client's memory.
inline CUresult check_memset_node(Client& c, const CUDA_MEMSET_NODE_PARAMS& p) {
  if (p.elementSize != 1 && p.elementSize != 2 && p.elementSize != 4) return CUDA_ERROR_INVALID_VALUE;
  const uint64_t pitch = p.height > 1 ? p.pitch : 0;
  return addressable(c, p.dst, span_2d(pitch, p.width, p.height, p.elementSize)) ? CUDA_SUCCESS
                                                                                   : CUDA_ERROR_INVALID_VALUE;
}

// Each side of a memcpy node must be memory the proxy can reach whenever the
// graph runs: the client's device memory, or host memory shared with the app
// (pinned, mapped, managed, registered).  The app's pageable memory is not
// mapped here, so a node on it cannot be run: NOT_SUPPORTED.
inline CUresult check_copy_side(Client& c, uint32_t type, uint64_t host, uint64_t dev, uint64_t x, uint64_t y,
                                uint64_t z, uint64_t pitch, uint64_t height, uint64_t w, uint64_t h, uint64_t d) {
  if (type == CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_NOT_SUPPORTED;  // arrays are not forwarded
  const uint64_t base = type == CU_MEMORYTYPE_HOST ? host : dev;
  const uint64_t start = base + (z * height + y) * pitch + x;
  const uint64_t bytes = (w && h && d) ? ((d - 1) * height + (h - 1)) * pitch + w : 0;
  if (addressable(c, start, bytes)) return CUDA_SUCCESS;
  if (type == CU_MEMORYTYPE_DEVICE || c.in_device_range(start, 1)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_ERROR_NOT_SUPPORTED;
}

inline CUresult check_memcpy_node(Client& c, const CUDA_MEMCPY3D& p) {
  CUresult r = check_copy_side(c, raw(p.srcMemoryType), reinterpret_cast<uint64_t>(p.srcHost), p.srcDevice, p.srcXInBytes,
                               p.srcY, p.srcZ, p.srcPitch ? p.srcPitch : p.WidthInBytes,
                               p.srcHeight ? p.srcHeight : p.Height, p.WidthInBytes, p.Height, p.Depth);
  if (r != CUDA_SUCCESS) return r;
  return check_copy_side(c, raw(p.dstMemoryType), reinterpret_cast<uint64_t>(p.dstHost), p.dstDevice, p.dstXInBytes,
                         p.dstY, p.dstZ, p.dstPitch ? p.dstPitch : p.WidthInBytes,
                         p.dstHeight ? p.dstHeight : p.Height, p.WidthInBytes, p.Height, p.Depth);
}

}  // namespace sing::proxy
