// Floating-point helpers with the GPU's rounding and NaN rules.
//
// f32/f64 arithmetic in the default .rn mode uses the host's IEEE operations
// (bit-identical).  Directed modes (.rz/.rm/.rp) switch the SSE rounding mode
// around inline-asm operations, so the compiler can neither constant-fold nor
// move them across the mode switch.  Narrow formats (f16, bf16, tf32) are
// produced by round_narrow(), which rounds a double plus the sign of the
// residual (exact = v + tiny) in any mode: exact for every operation whose
// double result is either exact or carries an exact error term.
#pragma once

// GCC contracts a*b+c into an FMA even in ISO mode; PTX results depend on
// every rounding, so no translation unit that computes floating-point results
// (they all include this header) may fuse implicitly.
#pragma GCC optimize("fp-contract=off")

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ptx/types.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SIM_X86 1
#else
#include <cfenv>
#define SIM_X86 0
#endif

namespace simgpu::ptx::fp {

inline uint32_t f2u(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float u2f(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint64_t d2u(double d) { uint64_t u; std::memcpy(&u, &d, 8); return u; }
inline double u2d(uint64_t u) { double d; std::memcpy(&d, &u, 8); return d; }

constexpr uint32_t kNanF32 = 0x7fffffffu;
constexpr uint64_t kNanF64 = 0x7fffffffffffffffull;
constexpr uint16_t kNanF16 = 0x7fff;
constexpr uint16_t kNanBF16 = 0x7fff;

inline float canon(float r) { return r != r ? u2f(kNanF32) : r; }
inline double canon(double r) { return r != r ? u2d(kNanF64) : r; }

// Flush subnormals to sign-preserving zero (.ftz).
inline float ftz(float x) {
  return std::fabs(x) < 1.17549435e-38f ? std::copysign(0.0f, x) : x;
}
inline double ftz(double x) {
  return std::fabs(x) < 2.2250738585072014e-308 ? std::copysign(0.0, x) : x;
}
// .sat: clamp to [0, 1], NaN -> +0.
inline float sat(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }
inline double sat(double x) { return x > 0.0 ? (x < 1.0 ? x : 1.0) : 0.0; }

// ---------------------------------------------------------------- formats

struct Fmt {
  int p;        // significand bits including the hidden bit
  int ebits;    // exponent field width
  int bias;
  bool has_inf; // false: e4m3 (saturates to NaN pattern)
};
constexpr Fmt kF16{11, 5, 15, true};
constexpr Fmt kBF16{8, 8, 127, true};
constexpr Fmt kF32{24, 8, 127, true};
constexpr Fmt kTF32{11, 8, 127, true};   // result kept in f32 layout, low 13 bits zero
constexpr Fmt kE5M2{3, 5, 15, true};
constexpr Fmt kE4M3{4, 4, 7, false};

// Rounds the exact value (v + residual with sign `rsign`, |residual| far below
// half an ulp of v in double) to format f, rounding mode r (RN, RZ, RM, RP,
// RNA).  Returns the encoding (sign | exponent | mantissa), NaN as canonical
// all-ones-mantissa pattern.  `satfinite` clamps overflow to the largest
// finite value.
uint32_t round_narrow(double v, int rsign, const Fmt& f, Rnd r, bool satfinite = false);
double decode_narrow(uint32_t bits, const Fmt& f);

inline uint16_t f32_to_f16(float x, Rnd r = Rnd::RN) {
#if defined(__F16C__)
  if (r == Rnd::RN) return x != x ? kNanF16 : uint16_t(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  return uint16_t(round_narrow(double(x), 0, kF16, r));
}
inline float f16_to_f32(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return float(decode_narrow(h, kF16));
#endif
}
inline uint16_t f32_to_bf16(float x, Rnd r = Rnd::RN) {
  uint32_t u = f2u(x);
  if (r == Rnd::RN) {
    if (x != x) return kNanBF16;
    u += 0x7fffu + ((u >> 16) & 1);
    return uint16_t(u >> 16);
  }
  return uint16_t(round_narrow(double(x), 0, kBF16, r));
}
inline float bf16_to_f32(uint16_t h) { return u2f(uint32_t(h) << 16); }

// Value of a literal/initializer in type t (round to nearest).
uint64_t encode_value(double v, Ty t);

// ---------------------------------------------------------------- directed rounding

#if SIM_X86
inline uint32_t mxcsr_get() {
  uint32_t v;
  asm volatile("stmxcsr %0" : "=m"(v));
  return v;
}
inline void mxcsr_set(uint32_t v) { asm volatile("ldmxcsr %0" : : "m"(v)); }
inline uint32_t mxcsr_mode(Rnd r) {
  switch (r) {
    case Rnd::RZ: return 3u << 13;
    case Rnd::RM: return 1u << 13;
    case Rnd::RP: return 2u << 13;
    default: return 0;
  }
}
// Scoped SSE rounding-mode switch; operations inside must be the asm helpers.
class RoundScope {
 public:
  explicit RoundScope(Rnd r) : saved_(mxcsr_get()) { mxcsr_set((saved_ & ~(3u << 13)) | mxcsr_mode(r)); }
  ~RoundScope() { mxcsr_set(saved_); }
  RoundScope(const RoundScope&) = delete;
  RoundScope& operator=(const RoundScope&) = delete;
 private:
  uint32_t saved_;
};

#if defined(__AVX__)
#define SIM_FOP(name, T, insn)                                                  \
  inline T name(T a, T b) {                                                     \
    T r;                                                                        \
    asm volatile("v" insn " %2, %1, %0" : "=x"(r) : "x"(a), "x"(b));            \
    return r;                                                                   \
  }
#else
#define SIM_FOP(name, T, insn)                                                  \
  inline T name(T a, T b) {                                                     \
    asm volatile(insn " %1, %0" : "+x"(a) : "x"(b));                            \
    return a;                                                                   \
  }
#endif
SIM_FOP(d_add, float, "addss")
SIM_FOP(d_sub, float, "subss")
SIM_FOP(d_mul, float, "mulss")
SIM_FOP(d_div, float, "divss")
SIM_FOP(d_add, double, "addsd")
SIM_FOP(d_sub, double, "subsd")
SIM_FOP(d_mul, double, "mulsd")
SIM_FOP(d_div, double, "divsd")
#undef SIM_FOP

inline float d_sqrt(float a) {
  float r;
#if defined(__AVX__)
  asm volatile("vsqrtss %1, %1, %0" : "=x"(r) : "x"(a));
#else
  r = a;
  asm volatile("sqrtss %0, %0" : "+x"(r));
#endif
  return r;
}
inline double d_sqrt(double a) {
  double r;
#if defined(__AVX__)
  asm volatile("vsqrtsd %1, %1, %0" : "=x"(r) : "x"(a));
#else
  r = a;
  asm volatile("sqrtsd %0, %0" : "+x"(r));
#endif
  return r;
}
#if defined(__FMA__)
inline float d_fma(float a, float b, float c) {
  asm volatile("vfmadd213ss %2, %1, %0" : "+x"(a) : "x"(b), "x"(c));
  return a;
}
inline double d_fma(double a, double b, double c) {
  asm volatile("vfmadd213sd %2, %1, %0" : "+x"(a) : "x"(b), "x"(c));
  return a;
}
#else
// No FMA instruction: compute exactly in software, then round in mode.
float d_fma_soft(float a, float b, float c);
double d_fma_soft(double a, double b, double c);
inline float d_fma(float a, float b, float c) { return d_fma_soft(a, b, c); }
inline double d_fma(double a, double b, double c) { return d_fma_soft(a, b, c); }
#endif
#else
#error "the PTX engine's directed rounding needs an x86-64 host"
#endif

// Integer -> float in any mode, exactly (one rounding from the integer).
float u64_to_f32(uint64_t v, Rnd r);
double u64_to_f64(uint64_t v, Rnd r);
float s64_to_f32(int64_t v, Rnd r);
double s64_to_f64(int64_t v, Rnd r);

}  // namespace simgpu::ptx::fp
