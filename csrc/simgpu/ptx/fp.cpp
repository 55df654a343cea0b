#include "ptx/fp.h"

#include <cmath>

namespace simgpu::ptx::fp {

uint32_t round_narrow(double v, int rsign, const Fmt& f, Rnd r, bool satfinite) {
  const int mbits = f.p - 1;
  const uint32_t emask = (1u << f.ebits) - 1;
  const uint32_t mmask = (1u << mbits) - 1;
  const uint32_t nan = (emask << mbits) | mmask;
  if (v != v) return nan;
  const bool neg = std::signbit(v);
  const uint32_t sbit = neg ? 1u << (f.ebits + mbits) : 0;
  const int rmag = neg ? -rsign : rsign;
  const bool away = (r == Rnd::RP && !neg) || (r == Rnd::RM && neg);
  const bool nearest = r == Rnd::RN || r == Rnd::RNA || r == Rnd::None;
  // Largest finite encoding and the exponent range.
  const int emax = (f.has_inf ? int(emask) - 1 : int(emask)) - f.bias;
  const int emin = 1 - f.bias;
  const uint64_t hidden = uint64_t(1) << mbits;
  const uint64_t max_sig = f.has_inf ? 2 * hidden - 1 : 2 * hidden - 2;  // e4m3: S.1111.110
  const uint32_t maxfin = (uint32_t(emax + f.bias) << mbits) | uint32_t(max_sig - hidden);
  const uint32_t inf = f.has_inf ? emask << mbits : nan;
  auto overflow = [&]() -> uint32_t {
    if (satfinite) return sbit | maxfin;
    if (nearest || away) return sbit | inf;
    return sbit | maxfin;
  };
  double a = std::fabs(v);
  if (std::isinf(a)) return satfinite ? sbit | maxfin : sbit | inf;
  if (a == 0 && rmag == 0) return sbit;
  int e;
  if (a == 0) {
    e = emin;
  } else {
    int ex;
    double m = std::frexp(a, &ex);
    e = ex - 1;
    // Exactly a power of two but the true value is a hair below: it lies in
    // the binade underneath, whose quantum is half as large.
    if (m == 0.5 && rmag < 0) e -= 1;
  }
  if (e < emin) e = emin;
  if (e > emax + 1) return overflow();
  double q = std::ldexp(a, mbits - e);  // exact: scaling by a power of two
  double n = std::floor(q);
  double fr = q - n;
  int cls;  // 0 exact, 1 below half, 2 half, 3 above half
  if (fr == 0) {
    if (rmag == 0) cls = 0;
    else if (rmag > 0) cls = 1;
    else { n -= 1; cls = 3; }
  } else if (fr == 0.5) {
    cls = rmag == 0 ? 2 : (rmag > 0 ? 3 : 1);
  } else {
    cls = fr < 0.5 ? 1 : 3;
  }
  bool inc;
  if (r == Rnd::RN || r == Rnd::None) inc = cls == 3 || (cls == 2 && std::fmod(n, 2.0) != 0);
  else if (r == Rnd::RNA) inc = cls >= 2;
  else inc = away && cls != 0;
  uint64_t ni = uint64_t(n) + (inc ? 1 : 0);
  if (ni >= 2 * hidden) { ni >>= 1; e += 1; }
  if (e > emax || (e == emax && ni > max_sig)) return overflow();
  if (ni < hidden) return sbit | uint32_t(ni);  // subnormal or zero (e == emin)
  return sbit | (uint32_t(e + f.bias) << mbits) | uint32_t(ni - hidden);
}

double decode_narrow(uint32_t bits, const Fmt& f) {
  const int mbits = f.p - 1;
  const uint32_t emask = (1u << f.ebits) - 1;
  const uint32_t mmask = (1u << mbits) - 1;
  bool neg = (bits >> (f.ebits + mbits)) & 1;
  uint32_t ex = (bits >> mbits) & emask, m = bits & mmask;
  double v;
  if (f.has_inf && ex == emask) {
    v = m ? std::nan("") : INFINITY;
  } else if (!f.has_inf && ex == emask && m == mmask) {
    v = std::nan("");
  } else if (ex == 0) {
    v = std::ldexp(double(m), 1 - f.bias - mbits);
  } else {
    v = std::ldexp(double(m | (1u << mbits)), int(ex) - f.bias - mbits);
  }
  return neg ? -v : v;
}

uint64_t encode_value(double v, Ty t) {
  switch (t) {
    case Ty::F32:
    case Ty::TF32: return f2u(float(v));
    case Ty::F64: return d2u(v);
    case Ty::F16: return round_narrow(v, 0, kF16, Rnd::RN);
    case Ty::BF16: return round_narrow(v, 0, kBF16, Rnd::RN);
    case Ty::F16x2: { uint32_t h = round_narrow(v, 0, kF16, Rnd::RN); return h | h << 16; }
    case Ty::BF16x2: { uint32_t h = round_narrow(v, 0, kBF16, Rnd::RN); return h | h << 16; }
    default: return uint64_t(int64_t(v));
  }
}

namespace {
// Rounds the unsigned magnitude v to p significant bits; the result is a
// double holding the rounded value exactly (p <= 53).
double round_uint(uint64_t v, int p, Rnd r, bool neg) {
  if (v == 0) return 0;
  int top = 63 - __builtin_clzll(v);
  if (top < p) return double(v);
  int drop = top + 1 - p;
  uint64_t hi = v >> drop, lo = v & ((uint64_t(1) << drop) - 1), half = uint64_t(1) << (drop - 1);
  bool away = (r == Rnd::RP && !neg) || (r == Rnd::RM && neg);
  bool inc;
  if (r == Rnd::RN || r == Rnd::None) inc = lo > half || (lo == half && (hi & 1));
  else if (r == Rnd::RNA) inc = lo >= half;
  else inc = away && lo != 0;
  return std::ldexp(double(hi + (inc ? 1 : 0)), drop);
}
}  // namespace

float u64_to_f32(uint64_t v, Rnd r) { return float(round_uint(v, 24, r, false)); }
double u64_to_f64(uint64_t v, Rnd r) { return round_uint(v, 53, r, false); }
float s64_to_f32(int64_t v, Rnd r) {
  bool neg = v < 0;
  uint64_t m = neg ? uint64_t(0) - uint64_t(v) : uint64_t(v);
  float x = float(round_uint(m, 24, r, neg));
  return neg ? -x : x;
}
double s64_to_f64(int64_t v, Rnd r) {
  bool neg = v < 0;
  uint64_t m = neg ? uint64_t(0) - uint64_t(v) : uint64_t(v);
  double x = round_uint(m, 53, r, neg);
  return neg ? -x : x;
}

#if SIM_X86 && !defined(__FMA__)
namespace {
Rnd current_mode() {
  switch ((mxcsr_get() >> 13) & 3) {
    case 1: return Rnd::RM;
    case 2: return Rnd::RP;
    case 3: return Rnd::RZ;
    default: return Rnd::RN;
  }
}
}  // namespace
float d_fma_soft(float a, float b, float c) {
  // a*b is exact in double; TwoSum gives the exact error of adding c.
  double p = double(a) * double(b);
  double s = p + double(c);
  double bb = s - p;
  double e = (p - (s - bb)) + (double(c) - bb);
  int rs = e > 0 ? 1 : (e < 0 ? -1 : 0);
  return u2f(round_narrow(s, rs, kF32, current_mode()));
}
double d_fma_soft(double a, double b, double c) { return std::fma(a, b, c); }
#endif

}  // namespace simgpu::ptx::fp
