// setp, set, selp, slct.  Comparisons produce a 32-bit lane mask; the
// optional boolean combination with a third predicate works on whole masks.
#include <cmath>

#include "ptx/fp.h"
#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

template <Cmp C, class T>
inline bool cmpv(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    bool un = a != a || b != b;
    switch (C) {
      case Cmp::EQ: return !un && a == b;
      case Cmp::NE: return !un && a != b;
      case Cmp::LT: return !un && a < b;
      case Cmp::LE: return !un && a <= b;
      case Cmp::GT: return !un && a > b;
      case Cmp::GE: return !un && a >= b;
      case Cmp::EQU: return un || a == b;
      case Cmp::NEU: return un || a != b;
      case Cmp::LTU: return un || a < b;
      case Cmp::LEU: return un || a <= b;
      case Cmp::GTU: return un || a > b;
      case Cmp::GEU: return un || a >= b;
      case Cmp::NUM: return !un;
      case Cmp::NAN_: return un;
      default: return false;
    }
  } else {
    switch (C) {
      case Cmp::EQ: return a == b;
      case Cmp::NE: return a != b;
      case Cmp::LT: case Cmp::LO: return a < b;
      case Cmp::LE: case Cmp::LS: return a <= b;
      case Cmp::GT: case Cmp::HI: return a > b;
      case Cmp::GE: case Cmp::HS: return a >= b;
      default: return false;
    }
  }
}

// Element kinds: plain C types, or 16-bit floats decoded to f32.
enum class EK : uint8_t { Plain, F16, BF16 };

template <EK K, bool FTZ, class T>
inline auto decode(T v) {
  if constexpr (K == EK::F16) {
    float f = fp::f16_to_f32(uint16_t(v));
    if constexpr (FTZ) f = std::fabs(f) < 6.10351562e-05f ? std::copysign(0.0f, f) : f;
    return f;
  } else if constexpr (K == EK::BF16) {
    return fp::bf16_to_f32(uint16_t(v));
  } else if constexpr (FTZ) {
    return fp::ftz(v);
  } else {
    return v;
  }
}

inline uint32_t combine(uint32_t r, uint32_t c, uint32_t comb) {
  switch (comb) {
    case 1: return r & c;
    case 2: return r | c;
    case 3: return r ^ c;
    default: return r;
  }
}

// aux: bits 0-1 combine op, bit 2 negate c.
template <Cmp C, class T, EK K, bool FTZ, bool X2>
int h_setp(Ctx& c, const Inst& in, uint32_t m) {
  uint32_t cw = pred_word(c, in.o[4]) ^ ((in.aux & 4) ? ~0u : 0u);
  uint32_t comb = in.aux & 3;
  if constexpr (!X2) {
    const T* a = R<const T>(c, in.o[2]);
    const T* b = R<const T>(c, in.o[3]);
    uint32_t r = collect([&](int i) { return cmpv<C>(decode<K, FTZ>(a[i]), decode<K, FTZ>(b[i])); });
    set_pred(c, in.o[0], combine(r, cw, comb), m);
    set_pred(c, in.o[1], combine(~r, cw, comb), m);
  } else {
    const uint32_t* a = R<const uint32_t>(c, in.o[2]);
    const uint32_t* b = R<const uint32_t>(c, in.o[3]);
    uint32_t lo = collect([&](int i) {
      return cmpv<C>(decode<K, FTZ>(uint16_t(a[i])), decode<K, FTZ>(uint16_t(b[i])));
    });
    uint32_t hi = collect([&](int i) {
      return cmpv<C>(decode<K, FTZ>(uint16_t(a[i] >> 16)), decode<K, FTZ>(uint16_t(b[i] >> 16)));
    });
    set_pred(c, in.o[0], combine(lo, cw, comb), m);
    set_pred(c, in.o[1], combine(hi, cw, comb), m);
  }
  return kNext;
}

// set: aux bits as setp; aux bits 8-9: destination kind (0 int all-ones,
// 1 f32 1.0, 2 packed f16 1.0 per half, 3 packed int all-ones per half, 4 bf16x2 1.0,
// 5 f16 1.0, 6 bf16 1.0, 7 16-bit all ones).
template <Cmp C, class T, EK K, bool FTZ, bool X2>
int h_set(Ctx& c, const Inst& in, uint32_t m) {
  uint32_t cw = pred_word(c, in.o[3]) ^ ((in.aux & 4) ? ~0u : 0u);
  uint32_t comb = in.aux & 3;
  uint32_t dk = (in.aux >> 8) & 7;
  uint32_t* d = R<uint32_t>(c, in.o[0]);
  if constexpr (!X2) {
    const T* a = R<const T>(c, in.o[1]);
    const T* b = R<const T>(c, in.o[2]);
    uint32_t r = combine(collect([&](int i) { return cmpv<C>(decode<K, FTZ>(a[i]), decode<K, FTZ>(b[i])); }), cw, comb);
    if (dk >= 5) {  // 16-bit destination: f16 1.0, bf16 1.0 or all ones
      uint16_t tv = dk == 5 ? 0x3c00 : dk == 6 ? 0x3f80 : 0xffff;
      uint16_t* d16 = R<uint16_t>(c, in.o[0]);
      SIM_FOR_LANES(m, i) d16[i] = ((r >> i) & 1) ? tv : 0;
      return kNext;
    }
    uint32_t tv = dk == 1 ? 0x3f800000u : 0xffffffffu;
    SIM_FOR_LANES(m, i) d[i] = ((r >> i) & 1) ? tv : 0;
  } else {
    const uint32_t* a = R<const uint32_t>(c, in.o[1]);
    const uint32_t* b = R<const uint32_t>(c, in.o[2]);
    uint32_t lo = combine(collect([&](int i) {
      return cmpv<C>(decode<K, FTZ>(uint16_t(a[i])), decode<K, FTZ>(uint16_t(b[i])));
    }), cw, comb);
    uint32_t hi = combine(collect([&](int i) {
      return cmpv<C>(decode<K, FTZ>(uint16_t(a[i] >> 16)), decode<K, FTZ>(uint16_t(b[i] >> 16)));
    }), cw, comb);
    uint32_t tv = dk == 2 ? 0x3c00u : dk == 4 ? 0x3f80u : 0xffffu;
    SIM_FOR_LANES(m, i) d[i] = (((lo >> i) & 1) ? tv : 0) | (((hi >> i) & 1) ? tv << 16 : 0);
  }
  return kNext;
}

template <bool SETP>
struct Pick {
  template <class T, EK K, bool FTZ, bool X2>
  static OpFn f(Cmp c) {
    constexpr bool fl = std::is_floating_point_v<T> || K != EK::Plain;
    auto h = [](auto cc) -> OpFn {
      constexpr Cmp C = decltype(cc)::value;
      return SETP ? &h_setp<C, T, K, FTZ, X2> : &h_set<C, T, K, FTZ, X2>;
    };
#define C_(X) case Cmp::X: return h(std::integral_constant<Cmp, Cmp::X>{});
    if constexpr (fl) {
      switch (c) {
        C_(EQ) C_(NE) C_(LT) C_(LE) C_(GT) C_(GE) C_(EQU) C_(NEU) C_(LTU) C_(LEU) C_(GTU) C_(GEU) C_(NUM) C_(NAN_)
        default: return nullptr;
      }
    } else if constexpr (std::is_signed_v<T>) {
      switch (c) {
        C_(EQ) C_(NE) C_(LT) C_(LE) C_(GT) C_(GE)
        default: return nullptr;
      }
    } else {
      switch (c) {
        C_(EQ) C_(NE) C_(LT) C_(LE) C_(GT) C_(GE) C_(LO) C_(LS) C_(HI) C_(HS)
        default: return nullptr;
      }
    }
#undef C_
  }
};

template <bool SETP>
OpFn select(Cmp cmp, Ty t, bool ftz) {
  using P = Pick<SETP>;
  bool eqne = cmp == Cmp::EQ || cmp == Cmp::NE;
  switch (t) {
    case Ty::B16: return eqne ? P::template f<uint16_t, EK::Plain, false, false>(cmp) : nullptr;
    case Ty::B32: return eqne ? P::template f<uint32_t, EK::Plain, false, false>(cmp) : nullptr;
    case Ty::B64: return eqne ? P::template f<uint64_t, EK::Plain, false, false>(cmp) : nullptr;
    case Ty::U16: return P::template f<uint16_t, EK::Plain, false, false>(cmp);
    case Ty::U32: return P::template f<uint32_t, EK::Plain, false, false>(cmp);
    case Ty::U64: return P::template f<uint64_t, EK::Plain, false, false>(cmp);
    case Ty::S16: return P::template f<int16_t, EK::Plain, false, false>(cmp);
    case Ty::S32: return P::template f<int32_t, EK::Plain, false, false>(cmp);
    case Ty::S64: return P::template f<int64_t, EK::Plain, false, false>(cmp);
    case Ty::F32:
      return ftz ? P::template f<float, EK::Plain, true, false>(cmp) : P::template f<float, EK::Plain, false, false>(cmp);
    case Ty::F64: return ftz ? nullptr : P::template f<double, EK::Plain, false, false>(cmp);
    case Ty::F16:
      return ftz ? P::template f<uint16_t, EK::F16, true, false>(cmp) : P::template f<uint16_t, EK::F16, false, false>(cmp);
    case Ty::F16x2:
      return ftz ? P::template f<uint32_t, EK::F16, true, true>(cmp) : P::template f<uint32_t, EK::F16, false, true>(cmp);
    case Ty::BF16: return P::template f<uint16_t, EK::BF16, false, false>(cmp);
    case Ty::BF16x2: return P::template f<uint32_t, EK::BF16, false, true>(cmp);
    default: return nullptr;
  }
}

template <unsigned N>
int h_selp(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<N>::T;
  const T* a = R<const T>(c, in.o[1]);
  const T* b = R<const T>(c, in.o[2]);
  uint32_t p = pred_word(c, in.o[3]);
  alignas(32) T t[32];
  for (int i = 0; i < 32; ++i) t[i] = ((p >> i) & 1) ? a[i] : b[i];
  merge(R<T>(c, in.o[0]), t, m);
  return kNext;
}

template <unsigned N, bool CF, bool FTZ>
int h_slct(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<N>::T;
  using CT = std::conditional_t<CF, float, int32_t>;
  return map3<T, T, T, CT>(c, in, m, [](T a, T b, CT cc) {
    if constexpr (CF) {
      float x = FTZ ? fp::ftz(cc) : cc;
      return x >= 0.0f ? a : b;
    } else {
      return cc >= 0 ? a : b;
    }
  });
}

}  // namespace

OpFn sel_setp(Cmp cmp, Ty t, BoolOp, bool ftz) { return select<true>(cmp, t, ftz); }
OpFn sel_set(Cmp cmp, Ty, Ty st, BoolOp, bool ftz) { return select<false>(cmp, st, ftz); }

OpFn sel_selp(unsigned size) {
  switch (size) {
    case 2: return &h_selp<2>;
    case 4: return &h_selp<4>;
    case 8: return &h_selp<8>;
  }
  return nullptr;
}

OpFn sel_slct(unsigned size, bool cf32, bool ftz) {
  switch (size) {
    case 2: return cf32 ? (ftz ? &h_slct<2, true, true> : &h_slct<2, true, false>) : &h_slct<2, false, false>;
    case 4: return cf32 ? (ftz ? &h_slct<4, true, true> : &h_slct<4, true, false>) : &h_slct<4, false, false>;
    case 8: return cf32 ? (ftz ? &h_slct<8, true, true> : &h_slct<8, true, false>) : &h_slct<8, false, false>;
  }
  return nullptr;
}

}  // namespace simgpu::ptx
