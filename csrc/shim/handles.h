// The handles this app has been given, so fire-and-forget calls can reject
// an unknown one at the call, as a driver does, instead of failing later.
// Ids are dense indices (wire/codec.h, proxy/handles.h), so a byte per index
// records the live kind; reads are lock-free.
#pragma once
#include <cstdint>

#include "driver_api.h"
#include "wire/codec.h"

namespace sing::shim {

void handle_seen(uint64_t id);
void handle_gone(uint64_t id);
// Null and the special streams pass; anything else must be a live id of
// this kind.
bool handle_valid(wire::HandleKind kind, uint64_t id);

template <class T>
inline CUresult check_handle(T h) {
  auto v = reinterpret_cast<uint64_t>(h);
  // Null means "the default" for streams and contexts; for these it is
  // simply not an object.
  constexpr bool null_is_bad = std::is_same_v<T, CUevent> || std::is_same_v<T, CUgraphExec> ||
                               std::is_same_v<T, CUfunction>;
  if (v == 0) return null_is_bad ? wire::bad_handle_error(wire::HandleTraits<T>::kind) : CUDA_SUCCESS;
  if constexpr (std::is_same_v<T, CUstream>) {
    if (v == 1 || v == 2) return CUDA_SUCCESS;
  }
  if (handle_valid(wire::HandleTraits<T>::kind, v)) return CUDA_SUCCESS;
  return wire::bad_handle_error(wire::HandleTraits<T>::kind);
}

}  // namespace sing::shim
