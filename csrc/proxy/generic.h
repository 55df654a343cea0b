// Generic serving of a forwarded call: decode each argument by its type (the
// mirror of the shim's forward.h), translate handles, call the backend's
// symbol of the same ABI version, encode the outputs.
#pragma once
#include <cstring>
#include <tuple>

#include "backend.h"
#include "guards.h"
#include "client.h"
#include "translate.h"
#include "wire/codec.h"

namespace sing::proxy {

template <class T, wire::ArgClass C = wire::arg_class<T>()>
struct Arg;

// By value: a CUDA enum is held as its integer (held_t, backend.h).
template <class T>
struct Arg<T, wire::ArgClass::Scalar> {
  held_t<T> v{};
  CUresult decode(Call& c) {
    v = c.in.get<held_t<T>>();
    return CUDA_SUCCESS;
  }
  held_t<T> pass() { return v; }
  void encode(Call&) {}
};

template <class T>
struct Arg<T, wire::ArgClass::Handle> {
  T real{};
  T app{};
  CUresult decode(Call& c) {
    app = reinterpret_cast<T>(c.in.get<uint64_t>());
    return to_real(c.client, app, &real);
  }
  T pass() { return real; }
  void encode(Call&) {}
};

template <class T>
struct Arg<T, wire::ArgClass::String> {
  const char* s = nullptr;
  CUresult decode(Call& c) {
    s = c.in.get_string();
    return CUDA_SUCCESS;
  }
  T pass() { return s; }
  void encode(Call&) {}
};

template <class T>
struct Arg<T, wire::ArgClass::In> {
  using P = std::remove_const_t<std::remove_pointer_t<T>>;
  P local{};
  bool present = false;
  CUresult decode(Call& c) {
    present = c.in.get<uint32_t>() != 0;
    if (present) {
      if (const uint8_t* p = c.in.take(sizeof(P))) std::memcpy(static_cast<void*>(&local), p, sizeof(P));
    }
    return CUDA_SUCCESS;
  }
  T pass() { return present ? &local : nullptr; }
  void encode(Call&) {}
};

template <class T>
struct Arg<T, wire::ArgClass::InOut> {
  using P = std::remove_pointer_t<T>;
  P local{};
  bool present = false;
  CUresult decode(Call& c) {
    present = c.in.get<uint32_t>() != 0;
    if (present) {
      if (const uint8_t* p = c.in.take(sizeof(P))) std::memcpy(static_cast<void*>(&local), p, sizeof(P));
    }
    return CUDA_SUCCESS;
  }
  T pass() { return present ? &local : nullptr; }
  void encode(Call& c) {
    if (present) c.out.put(&local, sizeof(P));
  }
};

template <class T>
struct Arg<T, wire::ArgClass::OutHandle> {
  using H = std::remove_pointer_t<T>;
  H real{};
  bool present = false;
  CUresult decode(Call& c) {
    present = c.in.get<uint32_t>() != 0;
    if (present) {
      // The app's current value is an input for none of the driver's calls
      // taking a handle pointer; start from null.
      c.in.take(sizeof(H));
    }
    return CUDA_SUCCESS;
  }
  T pass() { return present ? &real : nullptr; }
  void encode(Call& c) {
    if (!present) return;
    H app = to_app(c.client, real);
    c.out.put(&app, sizeof(H));
  }
};

template <uint16_t Op, class Sig, bool Destroy>
struct Generic;

template <uint16_t Op, bool Destroy, class... A>
struct Generic<Op, CUresult(A...), Destroy> {
  static CUresult run(Call& c) {
    auto fn = reinterpret_cast<held_sig_t<CUresult (*)(A...)>>(backend().fn[Op]);
    if (!fn) return CUDA_ERROR_NOT_SUPPORTED;
    std::tuple<Arg<A>...> args;
    // Every argument is decoded (the payload must be well formed), the first
    // bad handle is the answer.
    CUresult r = CUDA_SUCCESS;
    std::apply(
        [&](auto&... a) {
          auto one = [&](auto& x) {
            CUresult e = x.decode(c);
            if (r == CUDA_SUCCESS) r = e;
          };
          (one(a), ...);
        },
        args);
    if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS) return r;
    if ((r = Guard<Op>::check(c.client, args)) != CUDA_SUCCESS) return r;
    r = std::apply([&](auto&... a) { return fn(a.pass()...); }, args);
    if (r != CUDA_SUCCESS) return r;
    std::apply([&](auto&... a) { (a.encode(c), ...); }, args);
    if constexpr (Destroy) forget_first_handle(c, std::get<0>(args));
    return r;
  }

  template <class X>
  static void forget_first_handle(Call& c, X& arg) {
    if constexpr (requires { arg.app; }) forget(c.client, arg.app);
  }
};

}  // namespace sing::proxy
