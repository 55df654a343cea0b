// f16 / bf16 arithmetic, scalar and packed (x2).
//
// add/sub/mul are computed in f32 and rounded once to the narrow format:
// f32 carries more than 2p+2 bits for both formats, so this double rounding
// equals direct rounding.  fma is computed exactly in f64 with an error term
// (TwoSum) and rounded once from there.
#include <cmath>

#include "ptx/fp.h"
#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

template <bool BF> inline float dec(uint16_t h) { return BF ? fp::bf16_to_f32(h) : fp::f16_to_f32(h); }
template <bool BF> inline uint16_t enc(float f) { return BF ? fp::f32_to_bf16(f) : fp::f32_to_f16(f); }

template <bool BF> inline float flush_in(float x) {
  const float tiny = BF ? 1.17549435e-38f : 6.10351562e-05f;
  return std::fabs(x) < tiny ? std::copysign(0.0f, x) : x;
}
template <bool BF> inline uint16_t flush_out(uint16_t h) {
  uint16_t e = BF ? (h & 0x7f80) : (h & 0x7c00);
  return e == 0 ? uint16_t(h & 0x8000) : h;
}

template <bool BF> inline uint16_t one() { return BF ? 0x3f80 : 0x3c00; }
template <bool BF> inline bool is_nan(uint16_t h) {
  return BF ? ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) : ((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
}

inline float fmin_h(float a, float b) {
  if (a != a) return b;
  if (b != b) return a;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}
inline float fmax_h(float a, float b) {
  if (a != a) return b;
  if (b != b) return a;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

template <FOp OP, bool BF, bool FTZ, bool SAT, bool RELU>
inline uint16_t op1(uint16_t a, uint16_t b, uint16_t c) {
  float x = dec<BF>(a), y = dec<BF>(b), z = dec<BF>(c);
  if constexpr (FTZ) {
    x = flush_in<BF>(x);
    y = flush_in<BF>(y);
    z = flush_in<BF>(z);
  }
  uint16_t r;
  if constexpr (OP == FOp::Add) r = enc<BF>(x + y);
  else if constexpr (OP == FOp::Sub) r = enc<BF>(x - y);
  else if constexpr (OP == FOp::Mul) r = enc<BF>(x * y);
  else if constexpr (OP == FOp::Fma) {
    double p = double(x) * double(y);  // exact: 2 x 11 bits
    double s = p + double(z);
    double bb = s - p;
    double e = (p - (s - bb)) + (double(z) - bb);
    r = uint16_t(fp::round_narrow(s, e > 0 ? 1 : (e < 0 ? -1 : 0), BF ? fp::kBF16 : fp::kF16, Rnd::RN));
  } else if constexpr (OP == FOp::Min || OP == FOp::MinNaN) {
    if (OP == FOp::MinNaN && (x != x || y != y)) return 0x7fff;
    float v = fmin_h(x, y);
    return v != v ? 0x7fff : enc<BF>(v);
  } else if constexpr (OP == FOp::Max || OP == FOp::MaxNaN) {
    if (OP == FOp::MaxNaN && (x != x || y != y)) return 0x7fff;
    float v = fmax_h(x, y);
    return v != v ? 0x7fff : enc<BF>(v);
  } else if constexpr (OP == FOp::MinXs || OP == FOp::MaxXs) {
    float v = OP == FOp::MinXs ? fmin_h(std::fabs(x), std::fabs(y)) : fmax_h(std::fabs(x), std::fabs(y));
    if (v != v) return 0x7fff;
    bool neg = std::signbit(x) != std::signbit(y);
    return enc<BF>(neg ? -v : v);
  } else if constexpr (OP == FOp::Neg) {
    return FTZ ? uint16_t(flush_out<BF>(a) ^ 0x8000) : uint16_t(a ^ 0x8000);
  } else if constexpr (OP == FOp::Abs) {
    return FTZ ? uint16_t(flush_out<BF>(a) & 0x7fff) : uint16_t(a & 0x7fff);
  } else if constexpr (OP == FOp::Ex2) {
    r = enc<BF>(float(std::exp2(double(x))));
  } else if constexpr (OP == FOp::Tanh) {
    r = enc<BF>(float(std::tanh(double(x))));
  } else if constexpr (OP == FOp::Mov) {
    return a;
  } else {
    static_assert(OP == FOp::Add, "unhandled half op");
  }
  if (is_nan<BF>(r)) return SAT ? 0 : 0x7fff;
  if constexpr (FTZ) r = flush_out<BF>(r);
  if constexpr (SAT) {
    if (r & 0x8000) r = 0;
    else if (dec<BF>(r) > 1.0f) r = one<BF>();
  }
  if constexpr (RELU) {
    if (r & 0x8000) r = 0;
  }
  return r;
}

constexpr int arity(FOp op) {
  switch (op) {
    case FOp::Fma: return 3;
    case FOp::Neg: case FOp::Abs: case FOp::Ex2: case FOp::Tanh: case FOp::Mov: return 1;
    default: return 2;
  }
}

template <FOp OP, bool BF, bool X2, bool FTZ, bool SAT, bool RELU>
int h_half(Ctx& c, const Inst& in, uint32_t m) {
  constexpr int N = arity(OP);
  if constexpr (!X2) {
    using T = uint16_t;
    if constexpr (N == 1) return map1<T, T>(c, in, m, [](T a) { return op1<OP, BF, FTZ, SAT, RELU>(a, 0, 0); });
    else if constexpr (N == 2) return map2<T, T, T>(c, in, m, [](T a, T b) { return op1<OP, BF, FTZ, SAT, RELU>(a, b, 0); });
    else return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) { return op1<OP, BF, FTZ, SAT, RELU>(a, b, cc); });
  } else {
    using T = uint32_t;
    auto f = [](T a, T b, T cc) {
      uint32_t lo = op1<OP, BF, FTZ, SAT, RELU>(uint16_t(a), uint16_t(b), uint16_t(cc));
      uint32_t hi = op1<OP, BF, FTZ, SAT, RELU>(uint16_t(a >> 16), uint16_t(b >> 16), uint16_t(cc >> 16));
      return T(lo | hi << 16);
    };
    if constexpr (N == 1) return map1<T, T>(c, in, m, [f](T a) { return f(a, 0, 0); });
    else if constexpr (N == 2) return map2<T, T, T>(c, in, m, [f](T a, T b) { return f(a, b, 0); });
    else return map3<T, T, T, T>(c, in, m, f);
  }
}

template <FOp OP, bool BF, bool X2>
OpFn flags(bool ftz, bool sat, bool relu) {
  if (sat && relu) return nullptr;
  if (ftz) {
    if (sat) return &h_half<OP, BF, X2, true, true, false>;
    if (relu) return &h_half<OP, BF, X2, true, false, true>;
    return &h_half<OP, BF, X2, true, false, false>;
  }
  if (sat) return &h_half<OP, BF, X2, false, true, false>;
  if (relu) return &h_half<OP, BF, X2, false, false, true>;
  return &h_half<OP, BF, X2, false, false, false>;
}

template <FOp OP>
OpFn by_type(Ty t, bool ftz, bool sat, bool relu) {
  switch (t) {
    case Ty::F16: return flags<OP, false, false>(ftz, sat, relu);
    case Ty::F16x2: return flags<OP, false, true>(ftz, sat, relu);
    case Ty::BF16: return flags<OP, true, false>(ftz, sat, relu);
    case Ty::BF16x2: return flags<OP, true, true>(ftz, sat, relu);
    default: return nullptr;
  }
}

}  // namespace

OpFn sel_half(FOp op, Ty t, bool ftz, bool sat, bool relu) {
  switch (op) {
    case FOp::Add: return by_type<FOp::Add>(t, ftz, sat, false);
    case FOp::Sub: return by_type<FOp::Sub>(t, ftz, sat, false);
    case FOp::Mul: return by_type<FOp::Mul>(t, ftz, sat, false);
    case FOp::Fma: return by_type<FOp::Fma>(t, ftz, sat, relu);
    case FOp::Min: return by_type<FOp::Min>(t, ftz, false, false);
    case FOp::Max: return by_type<FOp::Max>(t, ftz, false, false);
    case FOp::MinNaN: return by_type<FOp::MinNaN>(t, ftz, false, false);
    case FOp::MaxNaN: return by_type<FOp::MaxNaN>(t, ftz, false, false);
    case FOp::MinXs: return by_type<FOp::MinXs>(t, false, false, false);
    case FOp::MaxXs: return by_type<FOp::MaxXs>(t, false, false, false);
    case FOp::Neg: return by_type<FOp::Neg>(t, ftz, false, false);
    case FOp::Abs: return by_type<FOp::Abs>(t, ftz, false, false);
    case FOp::Ex2: return by_type<FOp::Ex2>(t, ftz, false, false);
    case FOp::Tanh: return by_type<FOp::Tanh>(t, false, false, false);
    case FOp::Mov: return by_type<FOp::Mov>(t, false, false, false);
    default: return nullptr;
  }
}

}  // namespace simgpu::ptx
