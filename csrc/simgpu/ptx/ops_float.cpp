// f32/f64 arithmetic with PTX rounding, .ftz, .sat and NaN rules.
//
// .approx functions are computed in double and rounded once, which is at
// least as accurate as the GPU's documented bounds (rcp/sqrt 1 ulp, ex2 2 ulp,
// lg2/sin/cos ~2^-22 absolute, tanh 2^-11 relative).  div.approx.f32 keeps
// the documented zero result for divisors beyond 2^126.
#include <cmath>

#include "ptx/fp.h"
#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

using fp::canon;

template <class T, bool FTZ> inline T fz(T x) {
  if constexpr (FTZ) return fp::ftz(x);
  else return x;
}

template <class T, bool FTZ, bool SAT> inline T post(T r) {
  r = fz<T, FTZ>(r);
  if constexpr (SAT) r = fp::sat(r);
  return canon(r);
}

template <class T> inline T fmin_ptx(T a, T b) {
  if (a != a) return b != b ? canon(a) : b;
  if (b != b) return a;
  if (a == b) return std::signbit(a) ? a : b;  // -0 < +0
  return a < b ? a : b;
}
template <class T> inline T fmax_ptx(T a, T b) {
  if (a != a) return b != b ? canon(a) : b;
  if (b != b) return a;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

template <class T> inline T with_sign(T mag, bool neg) { return std::copysign(mag, neg ? T(-1) : T(1)); }

template <FOp OP, class T, Rnd RM, bool FTZ, bool SAT>
int h_f(Ctx& c, const Inst& in, uint32_t m) {
  constexpr bool DIR = RM == Rnd::RZ || RM == Rnd::RM || RM == Rnd::RP;
  if constexpr (DIR) {
    // Directed rounding: switch the SSE mode for this instruction only.
    fp::RoundScope scope(RM);
    if constexpr (OP == FOp::Add)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fp::d_add(fz<T, FTZ>(a), fz<T, FTZ>(b))); });
    else if constexpr (OP == FOp::Sub)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fp::d_sub(fz<T, FTZ>(a), fz<T, FTZ>(b))); });
    else if constexpr (OP == FOp::Mul)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fp::d_mul(fz<T, FTZ>(a), fz<T, FTZ>(b))); });
    else if constexpr (OP == FOp::Div)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fp::d_div(fz<T, FTZ>(a), fz<T, FTZ>(b))); });
    else if constexpr (OP == FOp::Fma)
      return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) {
        return post<T, FTZ, SAT>(fp::d_fma(fz<T, FTZ>(a), fz<T, FTZ>(b), fz<T, FTZ>(cc)));
      });
    else if constexpr (OP == FOp::Sqrt)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(fp::d_sqrt(fz<T, FTZ>(a))); });
    else if constexpr (OP == FOp::Rcp)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(fp::d_div(T(1), fz<T, FTZ>(a))); });
    else
      static_assert(sizeof(T) == 0, "no directed rounding for this op");
  } else {
    if constexpr (OP == FOp::Add)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fz<T, FTZ>(a) + fz<T, FTZ>(b)); });
    else if constexpr (OP == FOp::Sub)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fz<T, FTZ>(a) - fz<T, FTZ>(b)); });
    else if constexpr (OP == FOp::Mul)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fz<T, FTZ>(a) * fz<T, FTZ>(b)); });
    else if constexpr (OP == FOp::Div || OP == FOp::DivFull)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return post<T, FTZ, SAT>(fz<T, FTZ>(a) / fz<T, FTZ>(b)); });
    else if constexpr (OP == FOp::DivApprox)
      return map2<T, T, T>(c, in, m, [](T a, T b) {
        a = fz<T, FTZ>(a);
        b = fz<T, FTZ>(b);
        T ab = std::fabs(b);
        if (ab >= T(8.507059e37) && ab <= T(3.4028235e38) && std::isfinite(a))
          return with_sign(T(0), std::signbit(a) != std::signbit(b));
        return post<T, FTZ, SAT>(T(double(a) / double(b)));
      });
    else if constexpr (OP == FOp::Fma)
      return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) {
        return post<T, FTZ, SAT>(std::fma(fz<T, FTZ>(a), fz<T, FTZ>(b), fz<T, FTZ>(cc)));
      });
    else if constexpr (OP == FOp::Min)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return fmin_ptx(fz<T, FTZ>(a), fz<T, FTZ>(b)); });
    else if constexpr (OP == FOp::Max)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return fmax_ptx(fz<T, FTZ>(a), fz<T, FTZ>(b)); });
    else if constexpr (OP == FOp::MinNaN)
      return map2<T, T, T>(c, in, m, [](T a, T b) {
        return (a != a || b != b) ? canon(a + b) : fmin_ptx(fz<T, FTZ>(a), fz<T, FTZ>(b));
      });
    else if constexpr (OP == FOp::MaxNaN)
      return map2<T, T, T>(c, in, m, [](T a, T b) {
        return (a != a || b != b) ? canon(a + b) : fmax_ptx(fz<T, FTZ>(a), fz<T, FTZ>(b));
      });
    else if constexpr (OP == FOp::MinXs || OP == FOp::MaxXs)
      return map2<T, T, T>(c, in, m, [](T a, T b) {
        a = fz<T, FTZ>(a);
        b = fz<T, FTZ>(b);
        bool neg = std::signbit(a) != std::signbit(b);
        T r = OP == FOp::MinXs ? fmin_ptx(std::fabs(a), std::fabs(b)) : fmax_ptx(std::fabs(a), std::fabs(b));
        return r != r ? r : with_sign(r, neg);
      });
    else if constexpr (OP == FOp::Copysign)
      return map2<T, T, T>(c, in, m, [](T a, T b) { return std::copysign(b, a); });
    else if constexpr (OP == FOp::Neg)
      return map1<T, T>(c, in, m, [](T a) { return -fz<T, FTZ>(a); });
    else if constexpr (OP == FOp::Abs)
      return map1<T, T>(c, in, m, [](T a) { return std::fabs(fz<T, FTZ>(a)); });
    else if constexpr (OP == FOp::Mov)
      return map1<T, T>(c, in, m, [](T a) { return a; });
    else if constexpr (OP == FOp::Sqrt || OP == FOp::SqrtApprox)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(std::sqrt(fz<T, FTZ>(a))); });
    else if constexpr (OP == FOp::Rcp)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(1) / fz<T, FTZ>(a)); });
    else if constexpr (OP == FOp::RcpApprox || OP == FOp::RcpApproxFtz64)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(1.0 / double(fz<T, FTZ>(a)))); });
    else if constexpr (OP == FOp::Rsqrt || OP == FOp::RsqrtFtz64)
      return map1<T, T>(c, in, m, [](T a) {
        a = fz<T, FTZ>(a);
        if (a == 0) return with_sign(T(INFINITY), std::signbit(a));
        return post<T, FTZ, SAT>(T(1.0 / std::sqrt(double(a))));
      });
    else if constexpr (OP == FOp::Sin)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(std::sin(double(fz<T, FTZ>(a))))); });
    else if constexpr (OP == FOp::Cos)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(std::cos(double(fz<T, FTZ>(a))))); });
    else if constexpr (OP == FOp::Lg2)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(std::log2(double(fz<T, FTZ>(a))))); });
    else if constexpr (OP == FOp::Ex2)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(std::exp2(double(fz<T, FTZ>(a))))); });
    else if constexpr (OP == FOp::Tanh)
      return map1<T, T>(c, in, m, [](T a) { return post<T, FTZ, SAT>(T(std::tanh(double(fz<T, FTZ>(a))))); });
    else
      static_assert(sizeof(T) == 0, "unhandled float op");
  }
}

template <FOp OP, class T, bool FTZ, bool SAT>
OpFn by_rnd(Rnd r) {
  switch (r) {
    case Rnd::None:
    case Rnd::RN: return &h_f<OP, T, Rnd::RN, FTZ, SAT>;
    case Rnd::RZ: return &h_f<OP, T, Rnd::RZ, FTZ, SAT>;
    case Rnd::RM: return &h_f<OP, T, Rnd::RM, FTZ, SAT>;
    case Rnd::RP: return &h_f<OP, T, Rnd::RP, FTZ, SAT>;
    default: return nullptr;
  }
}

template <FOp OP>
OpFn rounded(Ty t, Rnd r, bool ftz, bool sat) {
  if (t == Ty::F64) return (ftz || sat) ? nullptr : by_rnd<OP, double, false, false>(r);
  if (t != Ty::F32) return nullptr;
  if (ftz) return sat ? by_rnd<OP, float, true, true>(r) : by_rnd<OP, float, true, false>(r);
  return sat ? by_rnd<OP, float, false, true>(r) : by_rnd<OP, float, false, false>(r);
}

// Ops without a rounding mode (approximations, min/max, sign ops).
template <FOp OP>
OpFn plain(Ty t, bool ftz, bool allow64) {
  if (t == Ty::F64) return (allow64 && !ftz) ? &h_f<OP, double, Rnd::RN, false, false> : nullptr;
  if (t != Ty::F32) return nullptr;
  return ftz ? &h_f<OP, float, Rnd::RN, true, false> : &h_f<OP, float, Rnd::RN, false, false>;
}

}  // namespace

OpFn sel_float(FOp op, Ty t, Rnd r, bool ftz, bool sat) {
  bool dflt = r == Rnd::None || r == Rnd::RN;
  switch (op) {
    case FOp::Add: return rounded<FOp::Add>(t, r, ftz, sat);
    case FOp::Sub: return rounded<FOp::Sub>(t, r, ftz, sat);
    case FOp::Mul: return rounded<FOp::Mul>(t, r, ftz, sat);
    case FOp::Fma: return rounded<FOp::Fma>(t, r, ftz, sat);
    case FOp::Div: return sat ? nullptr : rounded<FOp::Div>(t, r, ftz, false);
    case FOp::Sqrt: return sat ? nullptr : rounded<FOp::Sqrt>(t, r, ftz, false);
    case FOp::Rcp: return sat ? nullptr : rounded<FOp::Rcp>(t, r, ftz, false);
    case FOp::DivApprox: return dflt && !sat ? plain<FOp::DivApprox>(t, ftz, false) : nullptr;
    case FOp::DivFull: return dflt && !sat ? plain<FOp::DivFull>(t, ftz, false) : nullptr;
    case FOp::Min: return plain<FOp::Min>(t, ftz, true);
    case FOp::Max: return plain<FOp::Max>(t, ftz, true);
    case FOp::MinNaN: return plain<FOp::MinNaN>(t, ftz, true);
    case FOp::MaxNaN: return plain<FOp::MaxNaN>(t, ftz, true);
    case FOp::MinXs: return plain<FOp::MinXs>(t, ftz, true);
    case FOp::MaxXs: return plain<FOp::MaxXs>(t, ftz, true);
    case FOp::Copysign: return plain<FOp::Copysign>(t, false, true);
    case FOp::Neg: return plain<FOp::Neg>(t, ftz, true);
    case FOp::Abs: return plain<FOp::Abs>(t, ftz, true);
    case FOp::Mov: return plain<FOp::Mov>(t, false, true);
    case FOp::SqrtApprox: return plain<FOp::SqrtApprox>(t, ftz, false);
    case FOp::RcpApprox: return plain<FOp::RcpApprox>(t, ftz, false);
    case FOp::RcpApproxFtz64: return t == Ty::F64 ? &h_f<FOp::RcpApproxFtz64, double, Rnd::RN, true, false> : nullptr;
    case FOp::Rsqrt: return plain<FOp::Rsqrt>(t, ftz, false);
    case FOp::RsqrtFtz64: return t == Ty::F64 ? &h_f<FOp::RsqrtFtz64, double, Rnd::RN, true, false> : nullptr;
    case FOp::Sin: return plain<FOp::Sin>(t, ftz, false);
    case FOp::Cos: return plain<FOp::Cos>(t, ftz, false);
    case FOp::Lg2: return plain<FOp::Lg2>(t, ftz, false);
    case FOp::Ex2: return plain<FOp::Ex2>(t, ftz, false);
    case FOp::Tanh: return plain<FOp::Tanh>(t, ftz, false);
  }
  return nullptr;
}

namespace {
template <int W, class T>
int h_testp(Ctx& c, const Inst& in, uint32_t m) {
  const T* a = R<const T>(c, in.o[1]);
  uint32_t r = collect([&](int i) {
    T x = a[i];
    switch (W) {
      case 0: return std::isfinite(x);
      case 1: return std::isinf(x);
      case 2: return !std::isnan(x);
      case 3: return std::isnan(x);
      case 4: return std::isnormal(x);
      default: return std::fpclassify(x) == FP_SUBNORMAL;
    }
  });
  set_pred(c, in.o[0], r, m);
  return kNext;
}
template <class T>
OpFn testp_t(int w) {
  switch (w) {
    case 0: return &h_testp<0, T>;
    case 1: return &h_testp<1, T>;
    case 2: return &h_testp<2, T>;
    case 3: return &h_testp<3, T>;
    case 4: return &h_testp<4, T>;
    case 5: return &h_testp<5, T>;
  }
  return nullptr;
}
}  // namespace

OpFn sel_testp(int which, Ty t) {
  if (t == Ty::F32) return testp_t<float>(which);
  if (t == Ty::F64) return testp_t<double>(which);
  return nullptr;
}

}  // namespace simgpu::ptx
