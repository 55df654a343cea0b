// Virtual id <-> backend handle, typed: what every handler uses.
#pragma once
#include <cstdint>

#include "client.h"
#include "wire/codec.h"

namespace sing::proxy {

// The error the real driver gives for a bad handle of this type.
template <class T>
constexpr CUresult bad_handle_error() {
  return wire::bad_handle_error(wire::HandleTraits<T>::kind);
}

// The backend handle behind an app handle.  Null and, for streams, the
// special handles (CU_STREAM_LEGACY, CU_STREAM_PER_THREAD) pass unchanged:
// they mean the same thing on every driver.
template <class T>
inline CUresult to_real(Client& c, T app, T* real) {
  auto v = reinterpret_cast<uint64_t>(app);
  if (v == 0 || (std::is_same_v<T, CUstream> && (v == 1 || v == 2))) {
    *real = app;
    return CUDA_SUCCESS;
  }
  uint64_t r;
  if (!c.handles.to_real(wire::HandleTraits<T>::kind, v, &r)) return bad_handle_error<T>();
  *real = reinterpret_cast<T>(r);
  return CUDA_SUCCESS;
}

template <class T>
inline T to_app(Client& c, T real) {
  auto v = reinterpret_cast<uint64_t>(real);
  if (v == 0 || (std::is_same_v<T, CUstream> && (v == 1 || v == 2))) return real;
  return reinterpret_cast<T>(c.handles.to_vid(wire::HandleTraits<T>::kind, v));
}

template <class T>
inline void forget(Client& c, T app) {
  c.handles.forget(wire::HandleTraits<T>::kind, reinterpret_cast<uint64_t>(app));
}

}  // namespace sing::proxy
