// The driver the proxy runs calls on: any library with the libcuda ABI,
// opened by path (NVIDIA's libcuda.so.1, or libsimgpu.so).
#pragma once
#include <cstring>
#include <string>
#include <type_traits>

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

// The backend's implementation of `sym`, with its exact type but for enum
// parameters, which take their integer type (held_sig_t); calling it when the
// backend lacks the symbol returns CUDA_ERROR_NOT_SUPPORTED.
#define BACKEND(sym) (::sing::proxy::backend_fn<::sing::proxy::held_sig_t<decltype(&::sym)>>(::sing::wire::kOp_##sym))

namespace sing::proxy {

// How the proxy holds a by-value argument from the app and passes it on: a
// CUDA enum as its integer type.  The app may send any 32-bit value (a driver
// receives an int and answers a bad one with an error), but a C++ enum without
// a fixed type must not hold a value outside its enumerators' range (UBSan:
// "load of value N, which is not a valid value for type CUxxx_enum"), so the
// backend is called through a pointer whose enum parameters are the integers
// they are in the ABI.
template <class T, bool = std::is_enum_v<T>>
struct Held {
  using type = T;
};
template <class T>
struct Held<T, true> {
  using type = std::underlying_type_t<T>;
};
template <class T>
using held_t = typename Held<T>::type;

template <class F>
struct HeldSig;
template <class R, class... A>
struct HeldSig<R (*)(A...)> {
  using type = R (*)(held_t<A>...);
};
template <class F>
using held_sig_t = typename HeldSig<F>::type;

// An enum field of a struct the app sent, as the integer it holds: reading it
// as the enum would be undefined for a value out of range (held_t above).
template <class E>
inline std::underlying_type_t<E> raw(const E& field) {
  std::underlying_type_t<E> v;
  std::memcpy(&v, &field, sizeof(v));
  return v;
}

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
