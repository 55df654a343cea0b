// The driver the proxy runs calls on: any library with the libcuda ABI,
// opened by path (NVIDIA's libcuda.so.1, or libsimgpu.so).
#pragma once
#include <string>

#include "driver_api.h"
#include "wire/opcodes.h"

namespace sing::proxy {

struct Backend {
  void* handle = nullptr;
  std::string path;
  // Indexed by opcode: the backend's own symbol of that exact ABI version
  // (null when this driver does not have it).
  void* fn[wire::kDriverOpCount] = {};

  bool load(const std::string& library, std::string& error);
};

Backend& backend();

}  // namespace sing::proxy

// The backend's implementation of `sym`, with its exact type; calling it
// when the backend lacks the symbol returns CUDA_ERROR_NOT_SUPPORTED.
#define BACKEND(sym) (::sing::proxy::backend_fn<decltype(&::sym)>(::sing::wire::kOp_##sym))

namespace sing::proxy {

template <class F>
struct Missing;
template <class... A>
struct Missing<CUresult (*)(A...)> {
  static CUresult call(A...) { return CUDA_ERROR_NOT_SUPPORTED; }
};

template <class F>
inline F backend_fn(uint16_t op) {
  void* f = backend().fn[op];
  return f ? reinterpret_cast<F>(f) : &Missing<F>::call;
}

}  // namespace sing::proxy
