// cvt between every pair of integer and floating-point types.
//
// Integer rounding of floats saturates to the destination range and maps NaN
// to 0 (as PTX specifies for float-to-integer conversions).  Narrowing float
// conversions round once from the exact source value in the requested mode.
#include <cmath>
#include <limits>

#include "ptx/fp.h"
#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

template <Ty T> struct St;
template <> struct St<Ty::U8> { using T = uint8_t; };
template <> struct St<Ty::U16> { using T = uint16_t; };
template <> struct St<Ty::U32> { using T = uint32_t; };
template <> struct St<Ty::U64> { using T = uint64_t; };
template <> struct St<Ty::S8> { using T = int8_t; };
template <> struct St<Ty::S16> { using T = int16_t; };
template <> struct St<Ty::S32> { using T = int32_t; };
template <> struct St<Ty::S64> { using T = int64_t; };
template <> struct St<Ty::F16> { using T = uint16_t; };
template <> struct St<Ty::BF16> { using T = uint16_t; };
template <> struct St<Ty::F32> { using T = float; };
template <> struct St<Ty::F64> { using T = double; };
template <> struct St<Ty::TF32> { using T = uint32_t; };

constexpr bool is_f(Ty t) {
  return t == Ty::F16 || t == Ty::BF16 || t == Ty::F32 || t == Ty::F64 || t == Ty::TF32;
}

struct Md {
  Rnd r;
  bool ftz, sat, relu, satfinite;
};

const fp::Fmt& fmt_of(Ty t) {
  switch (t) {
    case Ty::F16: return fp::kF16;
    case Ty::BF16: return fp::kBF16;
    case Ty::TF32: return fp::kTF32;
    case Ty::E4M3x2: return fp::kE4M3;
    case Ty::E5M2x2: return fp::kE5M2;
    default: return fp::kF32;
  }
}

template <Ty S>
inline double fval(typename St<S>::T a, bool ftz) {
  if constexpr (S == Ty::F16) {
    double x = fp::f16_to_f32(a);
    return ftz && std::fabs(x) < 6.103515625e-05 ? std::copysign(0.0, x) : x;
  } else if constexpr (S == Ty::BF16) {
    return fp::bf16_to_f32(a);
  } else if constexpr (S == Ty::F32) {
    return ftz ? fp::ftz(a) : a;
  } else if constexpr (S == Ty::TF32) {
    return fp::u2f(a);
  } else {
    return a;
  }
}

inline double round_int(double x, Rnd r) {
  switch (r) {
    case Rnd::RZI: return std::trunc(x);
    case Rnd::RMI: return std::floor(x);
    case Rnd::RPI: return std::ceil(x);
    default: return std::nearbyint(x);  // .rni: to nearest even (the default environment)
  }
}

// Rounds an exact double to the float type D in mode r, then applies
// ftz/sat/relu.  Returns the storage value.
template <Ty D>
inline typename St<D>::T to_float(double x, int rsign, const Md& md) {
  Rnd r = md.r == Rnd::None ? Rnd::RN : md.r;
  if constexpr (D == Ty::F64) {
    double v = x;
    if (md.sat) v = fp::sat(v);
    return fp::canon(v);
  } else if constexpr (D == Ty::F32) {
    float v = (r == Rnd::RN && rsign == 0) ? float(x) : fp::u2f(fp::round_narrow(x, rsign, fp::kF32, r));
    if (md.ftz) v = fp::ftz(v);
    if (md.sat) v = fp::sat(v);
    return fp::canon(v);
  } else if constexpr (D == Ty::TF32) {
    if (x != x) return fp::kNanF32;
    return fp::round_narrow(x, rsign, fp::kTF32, r, md.satfinite) << 13;
  } else {
    const fp::Fmt& f = fmt_of(D);
    if (x != x) return 0x7fff;
    if (md.relu && x < 0) x = 0;
    if (md.sat) x = x < 0 ? 0 : (x > 1 ? 1 : x);
    uint16_t h = uint16_t(fp::round_narrow(x, rsign, f, r, md.satfinite));
    if (md.ftz && D == Ty::F16 && (h & 0x7c00) == 0) h &= 0x8000;
    return h;
  }
}

template <Ty D, Ty S>
inline typename St<D>::T cvt1(typename St<S>::T a, const Md& md) {
  using TD = typename St<D>::T;
  if constexpr (!is_f(S) && !is_f(D)) {
    if (!md.sat) return TD(a);
    __int128 v = __int128(a);
    __int128 lo = __int128(std::numeric_limits<TD>::min()), hi = __int128(std::numeric_limits<TD>::max());
    return TD(v < lo ? lo : (v > hi ? hi : v));
  } else if constexpr (!is_f(S)) {
    // Integer to float.
    Rnd r = md.r == Rnd::None ? Rnd::RN : md.r;
    if constexpr (D == Ty::F32) {
      float v;
      if (r == Rnd::RN) v = float(a);
      else if constexpr (std::is_signed_v<typename St<S>::T>) v = fp::s64_to_f32(int64_t(a), r);
      else v = fp::u64_to_f32(uint64_t(a), r);
      if (md.sat) v = fp::sat(v);
      return v;
    } else if constexpr (D == Ty::F64) {
      double v;
      if (r == Rnd::RN) v = double(a);
      else if constexpr (std::is_signed_v<typename St<S>::T>) v = fp::s64_to_f64(int64_t(a), r);
      else v = fp::u64_to_f64(uint64_t(a), r);
      if (md.sat) v = fp::sat(v);
      return v;
    } else {
      double d = double(a);
      __int128 diff = __int128(a) - __int128(d);  // exact: |d| <= 2^64
      return to_float<D>(d, diff > 0 ? 1 : (diff < 0 ? -1 : 0), md);
    }
  } else if constexpr (!is_f(D)) {
    // Float to integer: saturating, NaN -> 0.
    double x = fval<S>(a, md.ftz);
    if (x != x) return TD(0);
    x = round_int(x, md.r);
    constexpr double lo = double(std::numeric_limits<TD>::min());
    constexpr double hi = double(std::numeric_limits<TD>::max());
    if (x <= lo) return std::numeric_limits<TD>::min();
    if (x >= hi) return std::numeric_limits<TD>::max();
    return TD(x);
  } else {
    double x = fval<S>(a, md.ftz);
    if (md.r == Rnd::RNI || md.r == Rnd::RZI || md.r == Rnd::RMI || md.r == Rnd::RPI) {
      x = round_int(x, md.r);
      Md m2 = md;
      m2.r = Rnd::RN;
      return to_float<D>(x, 0, m2);
    }
    return to_float<D>(x, 0, md);
  }
}

template <Ty D, Ty S>
int h_cvt(Ctx& c, const Inst& in, uint32_t m) {
  Md md{Rnd(in.aux & 0xff), bool(in.aux & 0x100), bool(in.aux & 0x200), bool(in.aux & 0x400), bool(in.aux & 0x800)};
  using TD = typename St<D>::T;
  using TS = typename St<S>::T;
  return map1<TD, TS>(c, in, m, [md](TS a) { return cvt1<D, S>(a, md); });
}

// cvt.*.f16x2.f32 / bf16x2 / e4m3x2 / e5m2x2 d, a, b: a goes to the high half.
template <Ty H>
int h_pack2(Ctx& c, const Inst& in, uint32_t m) {
  Md md{Rnd(in.aux & 0xff), bool(in.aux & 0x100), bool(in.aux & 0x200), bool(in.aux & 0x400), bool(in.aux & 0x800)};
  if constexpr (H == Ty::F16 || H == Ty::BF16) {
    return map2<uint32_t, float, float>(c, in, m, [md](float a, float b) {
      return uint32_t(to_float<H>(a, 0, md)) << 16 | to_float<H>(b, 0, md);
    });
  } else {
    const fp::Fmt& f = fmt_of(H);
    return map2<uint16_t, float, float>(c, in, m, [md, &f](float a, float b) {
      Rnd r = md.r == Rnd::None ? Rnd::RN : md.r;
      auto one = [&](float x) -> uint32_t {
        if (x != x) return 0x7f;
        double v = md.relu && x < 0 ? 0.0 : double(x);
        return fp::round_narrow(v, 0, f, r, md.satfinite);
      };
      return uint16_t(one(a) << 8 | one(b));
    });
  }
}

// cvt.rn.f16x2.e4m3x2 d, a: widen two fp8 values.
template <Ty H>
int h_unpack_fp8(Ctx& c, const Inst& in, uint32_t m) {
  const fp::Fmt& f = fmt_of(H);
  return map1<uint32_t, uint16_t>(c, in, m, [&f](uint16_t a) {
    auto one = [&](uint32_t x) -> uint32_t {
      double v = fp::decode_narrow(x & 0xff, f);
      return v != v ? 0x7fff : fp::round_narrow(v, 0, fp::kF16, Rnd::RN);
    };
    return one(a >> 8) << 16 | one(a);
  });
}

template <Ty D>
OpFn by_src(Ty s) {
  switch (s) {
#define S_(X) case Ty::X: return &h_cvt<D, Ty::X>;
    S_(U8) S_(U16) S_(U32) S_(U64) S_(S8) S_(S16) S_(S32) S_(S64) S_(F16) S_(BF16) S_(F32) S_(F64)
#undef S_
    default: return nullptr;
  }
}

}  // namespace

OpFn sel_cvt(Ty dt, Ty st, Rnd, bool, bool, bool, bool) {
  if (dt == Ty::F16x2 && st == Ty::F32) return &h_pack2<Ty::F16>;
  if (dt == Ty::BF16x2 && st == Ty::F32) return &h_pack2<Ty::BF16>;
  if (dt == Ty::E4M3x2 && st == Ty::F32) return &h_pack2<Ty::E4M3x2>;
  if (dt == Ty::E5M2x2 && st == Ty::F32) return &h_pack2<Ty::E5M2x2>;
  if (dt == Ty::F16x2 && st == Ty::E4M3x2) return &h_unpack_fp8<Ty::E4M3x2>;
  if (dt == Ty::F16x2 && st == Ty::E5M2x2) return &h_unpack_fp8<Ty::E5M2x2>;
  if (dt == Ty::TF32 && st == Ty::F32) return &h_cvt<Ty::TF32, Ty::F32>;
  switch (dt) {
#define D_(X) case Ty::X: return by_src<Ty::X>(st);
    D_(U8) D_(U16) D_(U32) D_(U64) D_(S8) D_(S16) D_(S32) D_(S64) D_(F16) D_(BF16) D_(F32) D_(F64)
#undef D_
    default: return nullptr;
  }
}

OpFn sel_cvt_pack(Ty, bool) { return nullptr; }

}  // namespace simgpu::ptx
