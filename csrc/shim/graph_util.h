// Marshalling shared by the shim's graph and capture entry points: arrays of
// node ids, new node ids, and the paged array queries (wire/graph.h).
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "call.h"
#include "handles.h"
#include "wire/graph.h"

namespace sing::shim {

// Handles are the app's ids, pointer-sized: an array of them goes as is.
template <class H>
inline void put_ids(wire::Writer& w, const H* ids, size_t n) {
  static_assert(sizeof(H) == sizeof(uint64_t));
  if (n) w.put(ids, uint32_t(n * sizeof(H)));
}

inline bool ids_ok(const void* ids, size_t n) { return (n == 0 || ids) && n <= wire::kMaxGraphIds; }

// The answer's first field is a new handle: hand it to the app.
template <class H>
inline CUresult take_handle(const Answer& a, H* out) {
  if (a.result != CUDA_SUCCESS) return a.result;
  wire::Reader r = a.reader();
  uint64_t id = r.get<uint64_t>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *out = reinterpret_cast<H>(id);
  handle_seen(id);
  return CUDA_SUCCESS;
}

// A query filling up to *num entries of one or two id arrays (and edge
// data): one round trip per page of the answer, until the app's arrays are
// full.  `head` writes the call's own arguments.
template <class Head>
CUresult list_call(uint16_t op, Head head, size_t* num, CUgraphNode* first, CUgraphNode* second,
                   CUgraphEdgeData* edges) {
  if (!num) return CUDA_ERROR_INVALID_VALUE;
  const uint64_t capacity = *num;
  uint32_t arrays = (first ? uint32_t(wire::kListFirst) : 0u) | (second ? uint32_t(wire::kListSecond) : 0u) |
                    (edges ? uint32_t(wire::kListEdgeData) : 0u);
  uint64_t offset = 0, result_num = 0;
  do {
    wire::ListRequest req{capacity, offset, arrays, 0};
    Answer a = sync_call(op, [&](wire::Writer& w) {
      head(w);
      w.put(req);
    });
    if (a.result != CUDA_SUCCESS) return a.result;
    wire::Reader r = a.reader();
    auto ans = r.get<wire::ListAnswer>();
    if (!r.ok() || ans.count > capacity - offset) return CUDA_ERROR_UNKNOWN;
    result_num = ans.num;
    for (CUgraphNode* arr : {first, second}) {
      if (!arr) continue;
      const uint8_t* p = r.take(uint32_t(ans.count * sizeof(uint64_t)));
      if (!p && ans.count) return CUDA_ERROR_UNKNOWN;
      for (uint64_t i = 0; i < ans.count; ++i) {
        uint64_t id;
        std::memcpy(&id, p + i * sizeof(uint64_t), sizeof(id));
        arr[offset + i] = reinterpret_cast<CUgraphNode>(id);
        if (id) handle_seen(id);
      }
    }
    if (edges && ans.count) {
      const uint8_t* p = r.take(uint32_t(ans.count * sizeof(CUgraphEdgeData)));
      if (!p) return CUDA_ERROR_UNKNOWN;
      std::memcpy(edges + offset, p, ans.count * sizeof(CUgraphEdgeData));
    }
    if (ans.count == 0) break;  // nothing more to fill
    offset += ans.count;
  } while (arrays && offset < capacity);
  *num = result_num;
  return CUDA_SUCCESS;
}

}  // namespace sing::shim

namespace sing::shim::custom {

// Kernel node parameters as the proxy takes them (custom_graph.cpp).
CUresult encode_kernel_node(const CUDA_KERNEL_NODE_PARAMS* p, wire::KernelNodeParams* head, std::vector<uint8_t>* buf);

}  // namespace sing::shim::custom
