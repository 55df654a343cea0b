// atom / red.  Lanes perform their operations one after another in lane
// order (a valid GPU ordering).  Every access is a host atomic, so blocks on
// different worker threads see each other's updates; shared memory uses the
// same path because its cost is irrelevant next to correctness.
#include <cmath>

#include "ptx/fp.h"
#include "ptx/lanes.h"
#include "ptx/mem_access.h"

namespace simgpu::ptx {

namespace {

template <class S, class F>
inline S cas_loop(S* p, F f) {
  S old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(p, &old, f(old), false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
  }
  return old;
}

// Element kinds beyond plain integers.
enum class AK : uint8_t { U, S, F32, F64, F16, F16x2, BF16, BF16x2 };

template <AK K> struct Store;
template <> struct Store<AK::F32> { using T = uint32_t; };
template <> struct Store<AK::F64> { using T = uint64_t; };
template <> struct Store<AK::F16> { using T = uint16_t; };
template <> struct Store<AK::BF16> { using T = uint16_t; };
template <> struct Store<AK::F16x2> { using T = uint32_t; };
template <> struct Store<AK::BF16x2> { using T = uint32_t; };

inline uint16_t h_add(uint16_t a, uint16_t b, bool bf) {
  if (bf) return fp::f32_to_bf16(fp::bf16_to_f32(a) + fp::bf16_to_f32(b));
  return fp::f32_to_f16(fp::f16_to_f32(a) + fp::f16_to_f32(b));
}

template <AOp OP, class T, AK K>
inline T rmw(T* p, T b, T c) {
  if constexpr (K == AK::F32) {
    // atom.add.f32 flushes subnormal inputs and results to zero.
    return cas_loop(p, [b](T old) {
      float r = fp::ftz(fp::ftz(fp::u2f(old)) + fp::ftz(fp::u2f(b)));
      return T(fp::f2u(fp::canon(r)));
    });
  } else if constexpr (K == AK::F64) {
    return cas_loop(p, [b](T old) { return T(fp::d2u(fp::canon(fp::u2d(old) + fp::u2d(b)))); });
  } else if constexpr (K == AK::F16 || K == AK::BF16) {
    return cas_loop(p, [b](T old) { return T(h_add(old, b, K == AK::BF16)); });
  } else if constexpr (K == AK::F16x2 || K == AK::BF16x2) {
    return cas_loop(p, [b](T old) {
      bool bf = K == AK::BF16x2;
      uint32_t lo = h_add(uint16_t(old), uint16_t(b), bf), hi = h_add(uint16_t(old >> 16), uint16_t(b >> 16), bf);
      return T(lo | hi << 16);
    });
  } else {
    using ST = std::conditional_t<K == AK::S, std::make_signed_t<T>, T>;
    switch (OP) {
      case AOp::Add: return __atomic_fetch_add(p, b, __ATOMIC_SEQ_CST);
      case AOp::And: return __atomic_fetch_and(p, b, __ATOMIC_SEQ_CST);
      case AOp::Or: return __atomic_fetch_or(p, b, __ATOMIC_SEQ_CST);
      case AOp::Xor: return __atomic_fetch_xor(p, b, __ATOMIC_SEQ_CST);
      case AOp::Exch: return __atomic_exchange_n(p, b, __ATOMIC_SEQ_CST);
      case AOp::Cas: {
        T expected = b;
        __atomic_compare_exchange_n(p, &expected, c, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        return expected;
      }
      case AOp::Min: return cas_loop(p, [b](T old) { return ST(old) < ST(b) ? old : b; });
      case AOp::Max: return cas_loop(p, [b](T old) { return ST(old) > ST(b) ? old : b; });
      case AOp::Inc: return cas_loop(p, [b](T old) { return old >= b ? T(0) : T(old + 1); });
      case AOp::Dec: return cas_loop(p, [b](T old) { return (old == 0 || old > b) ? b : T(old - 1); });
    }
    return 0;
  }
}

template <AOp OP, class T, AK K, MSp SP, bool A64>
int h_atom(Ctx& c, const Inst& in, uint32_t m) {
  using AT = std::conditional_t<A64, uint64_t, uint32_t>;
  uint8_t* ptr[32];
  if (int r = translate<SP, sizeof(T), AT>(c, in, m, ptr, true, "atomic")) return r;
  T* d = R<T>(c, in.o[0]);
  const T* b = R<const T>(c, in.o[2]);
  const T* cc = R<const T>(c, in.o[3]);
  SIM_FOR_LANES(m, i) d[i] = rmw<OP, T, K>(reinterpret_cast<T*>(ptr[i]), b[i], cc[i]);
  return kNext;
}

template <AOp OP, class T, AK K>
OpFn by_space(MSp sp, bool a64) {
  switch (sp) {
    case MSp::Global: return a64 ? &h_atom<OP, T, K, MSp::Global, true> : nullptr;
    case MSp::Generic: return a64 ? &h_atom<OP, T, K, MSp::Generic, true> : nullptr;
    case MSp::Shared: return a64 ? &h_atom<OP, T, K, MSp::Shared, true> : &h_atom<OP, T, K, MSp::Shared, false>;
    default: return nullptr;
  }
}

template <AOp OP>
OpFn ints(Ty t, MSp sp, bool a64, bool allow_signed, bool allow64) {
  switch (t) {
    case Ty::U32: case Ty::B32: return by_space<OP, uint32_t, AK::U>(sp, a64);
    case Ty::S32: return allow_signed ? by_space<OP, uint32_t, AK::S>(sp, a64) : by_space<OP, uint32_t, AK::U>(sp, a64);
    case Ty::U64: case Ty::B64: return allow64 ? by_space<OP, uint64_t, AK::U>(sp, a64) : nullptr;
    case Ty::S64: return !allow64 ? nullptr : allow_signed ? by_space<OP, uint64_t, AK::S>(sp, a64) : by_space<OP, uint64_t, AK::U>(sp, a64);
    default: return nullptr;
  }
}

}  // namespace

OpFn sel_atom(AOp op, Ty t, MSp sp, bool a64) {
  switch (op) {
    case AOp::Add:
      switch (t) {
        case Ty::F32: return by_space<AOp::Add, uint32_t, AK::F32>(sp, a64);
        case Ty::F64: return by_space<AOp::Add, uint64_t, AK::F64>(sp, a64);
        case Ty::F16: return by_space<AOp::Add, uint16_t, AK::F16>(sp, a64);
        case Ty::BF16: return by_space<AOp::Add, uint16_t, AK::BF16>(sp, a64);
        case Ty::F16x2: return by_space<AOp::Add, uint32_t, AK::F16x2>(sp, a64);
        case Ty::BF16x2: return by_space<AOp::Add, uint32_t, AK::BF16x2>(sp, a64);
        case Ty::U32: case Ty::S32: case Ty::U64: return ints<AOp::Add>(t, sp, a64, false, true);
        default: return nullptr;
      }
    case AOp::Min: return ints<AOp::Min>(t, sp, a64, true, true);
    case AOp::Max: return ints<AOp::Max>(t, sp, a64, true, true);
    case AOp::Inc: return t == Ty::U32 ? ints<AOp::Inc>(t, sp, a64, false, false) : nullptr;
    case AOp::Dec: return t == Ty::U32 ? ints<AOp::Dec>(t, sp, a64, false, false) : nullptr;
    case AOp::And: return t == Ty::B32 || t == Ty::B64 ? ints<AOp::And>(t, sp, a64, false, true) : nullptr;
    case AOp::Or: return t == Ty::B32 || t == Ty::B64 ? ints<AOp::Or>(t, sp, a64, false, true) : nullptr;
    case AOp::Xor: return t == Ty::B32 || t == Ty::B64 ? ints<AOp::Xor>(t, sp, a64, false, true) : nullptr;
    case AOp::Exch:
      if (t == Ty::B32 || t == Ty::B64 || t == Ty::U32 || t == Ty::U64 || t == Ty::S32 || t == Ty::S64 || t == Ty::F32)
        return ty_size(t) == 8 ? by_space<AOp::Exch, uint64_t, AK::U>(sp, a64) : by_space<AOp::Exch, uint32_t, AK::U>(sp, a64);
      return nullptr;
    case AOp::Cas:
      if (t == Ty::B16) return by_space<AOp::Cas, uint16_t, AK::U>(sp, a64);
      if (t == Ty::B32 || t == Ty::U32 || t == Ty::S32) return by_space<AOp::Cas, uint32_t, AK::U>(sp, a64);
      if (t == Ty::B64 || t == Ty::U64 || t == Ty::S64) return by_space<AOp::Cas, uint64_t, AK::U>(sp, a64);
      return nullptr;
  }
  return nullptr;
}

}  // namespace simgpu::ptx
