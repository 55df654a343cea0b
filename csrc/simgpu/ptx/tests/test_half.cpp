// fp16/bf16 against host references: _Float16 (correctly rounded by libgcc)
// for fp16, bit-level rounding for bf16.
#include <cfenv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

uint16_t hbits(_Float16 h) { uint16_t u; std::memcpy(&u, &h, 2); return u; }
_Float16 hval(uint16_t u) { _Float16 h; std::memcpy(&h, &u, 2); return h; }
float hf(uint16_t u) { return float(hval(u)); }
bool hnan(uint16_t u) { return (u & 0x7c00) == 0x7c00 && (u & 0x3ff); }
uint16_t hc(_Float16 h) { uint16_t u = hbits(h); return hnan(u) ? 0x7fff : u; }  // canonical NaN

template <class F>
uint16_t h_in_mode(int mode, F f) {
  int old = std::fegetround();
  std::fesetround(mode);
  _Float16 r = f();
  uint16_t u = hbits(r);
  asm volatile("" : "+r"(u) : : "memory");
  std::fesetround(old);
  return hnan(u) ? 0x7fff : u;
}

float bf(uint16_t u) { return bits_f(uint32_t(u) << 16); }
uint16_t to_bf(float f, int mode) {
  if (f != f) return 0x7fff;
  uint32_t u = f_bits(f);
  uint32_t lo = u & 0xffff, hi = u >> 16;
  bool neg = u >> 31;
  switch (mode) {
    case FE_TONEAREST: return uint16_t(hi + (lo > 0x8000 || (lo == 0x8000 && (hi & 1))));
    case FE_TOWARDZERO: return uint16_t(hi);
    case FE_DOWNWARD: return uint16_t(hi + (neg && lo));
    default: return uint16_t(hi + (!neg && lo));
  }
}

uint16_t hmin(uint16_t a, uint16_t b) {
  float x = hf(a), y = hf(b);
  if (x != x) return y != y ? 0x7fff : b;
  if (y != y) return a;
  if (x == y) return std::signbit(x) ? a : b;
  return x < y ? a : b;
}

std::vector<uint16_t> ref(uint16_t ua, uint16_t ub, uint16_t uc, float f) {
  std::vector<uint16_t> o;
  _Float16 a = hval(ua), b = hval(ub), c = hval(uc);
  o.push_back(hc(_Float16(float(a) + float(b))));
  o.push_back(hc(_Float16(float(a) - float(b))));
  o.push_back(hc(_Float16(float(a) * float(b))));
  long double e = (long double)a * (long double)b + (long double)c;  // exact for these inputs
  _Float16 fm = _Float16(e);
  o.push_back(hc(fm));
  float fs = float(fm);
  o.push_back(fs != fs ? 0 : hbits(_Float16(fs > 0 ? (fs > 1 ? 1.0f : fs) : 0.0f)));  // .sat: -0 -> +0
  o.push_back(fs != fs ? 0x7fff : (std::signbit(fs) ? 0 : hbits(fm)));
  o.push_back(hmin(ua, ub));
  {
    float x = hf(ua), y = hf(ub);
    o.push_back(x != x || y != y ? 0x7fff : (x == y ? (std::signbit(x) ? ub : ua) : (x > y ? ua : ub)));
  }
  o.push_back(ua ^ 0x8000);
  o.push_back(ua & 0x7fff);
  {
    float x = hf(ua), y = hf(ub);
    bool un = x != x || y != y;
    o.push_back(uint16_t((!un && x < y) | (un || x >= y) << 1 | (x != x) << 2 | (!un && x != y) << 3));
  }
  o.push_back(hc(_Float16(f)));
  o.push_back(h_in_mode(FE_TOWARDZERO, [&] { volatile float v = f; return _Float16(float(v)); }));
  o.push_back(h_in_mode(FE_DOWNWARD, [&] { volatile float v = f; return _Float16(float(v)); }));
  o.push_back(h_in_mode(FE_UPWARD, [&] { volatile float v = f; return _Float16(float(v)); }));
  o.push_back(hc(_Float16(double(f) * 1.000000119)));
  {
    // The device's float->int conversion saturates (and maps NaN to 0).
    float g = f * 1000.0f;
    int gi = g != g ? 0 : g >= 2147483648.0f ? INT32_MAX : g <= -2147483648.0f ? INT32_MIN : int(g);
    o.push_back(hc(_Float16(gi)));
  }
  {
    float x = hf(ua);
    int v = x != x ? 0 : std::isinf(x) ? (x > 0 ? INT32_MAX : INT32_MIN) : int(std::trunc(x));
    o.push_back(uint16_t(v));
    uint32_t fb = f_bits(x);
    if (x != x) fb = 0x7fffffff;
    o.push_back(uint16_t(fb >> 16));
    o.push_back(uint16_t(fb));
  }
  float x = bf(ua), y = bf(ub), z = bf(uc);
  o.push_back(to_bf(x + y, FE_TONEAREST));
  o.push_back(to_bf(x * y, FE_TONEAREST));
  {
    // bf16 products are exact in float; the sum with z is rounded once in double.
    double s = double(x * y) + double(z);
    float sf = float(s);  // inputs keep this exact enough: checked with long double below
    long double ex = (long double)(x * y) + (long double)z;
    if ((long double)sf == ex || std::isnan(sf) || std::isinf(sf)) o.push_back(to_bf(sf, FE_TONEAREST));
    else o.push_back(to_bf(float(ex), FE_TONEAREST));
  }
  {
    uint16_t r;
    if (x != x) r = y != y ? 0x7fff : ub;
    else if (y != y) r = ua;
    else if (x == y) r = std::signbit(x) ? ub : ua;
    else r = x > y ? ua : ub;
    o.push_back(r);
  }
  o.push_back(to_bf(f, FE_TONEAREST));
  o.push_back(to_bf(f, FE_TOWARDZERO));
  o.push_back(to_bf(f, FE_DOWNWARD));
  o.push_back(to_bf(f, FE_UPWARD));
  o.push_back(uint16_t((x < y) | (x == y) << 1));
  {
    // __hfma2(p, q, p) with p = (a, b), q = (c, a)
    o.push_back(hc(_Float16((long double)a * (long double)c + (long double)a)));
    o.push_back(hc(_Float16((long double)b * (long double)a + (long double)b)));
    o.push_back(hc(_Float16(float(a) * float(c))));
    o.push_back(hc(_Float16(float(b) * float(a))));
    o.push_back(to_bf(x + z, FE_TONEAREST));
    o.push_back(to_bf(y + x, FE_TONEAREST));
    o.push_back(hc(_Float16(f)));
    o.push_back(hc(_Float16(-f * 3.0f)));
  }
  o.push_back(hc(_Float16(std::exp2(double(float(a))))));
  o.push_back(uint16_t(o.size()));
  return o;
}

TEST(Half, Fp16Bf16) {
  SIM_NEED_PTX(ptx, "half_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-8, 8);
  std::vector<uint16_t> A, B, C;
  std::vector<float> F;
  const uint16_t edge[] = {0x0000, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x03ff, 0x7bff, 0x3555};
  for (uint16_t p : edge)
    for (uint16_t q : edge) A.push_back(p), B.push_back(q), C.push_back(edge[(p + q) % 11]), F.push_back(u(rng));
  const float fedge[] = {65504.0f, 65520.0f, 65519.99f, 1e-8f, -2.98e-8f, 5.96e-8f, 1e38f, NAN, -INFINITY, 3.14159f};
  for (size_t i = 0; i < 10; ++i) F[i] = fedge[i];
  while (A.size() < 400) {
    A.push_back(hbits(_Float16(u(rng))));
    B.push_back(hbits(_Float16(u(rng))));
    C.push_back(hbits(_Float16(u(rng))));
    F.push_back(rng() % 4 ? u(rng) * 1000.0f : bits_f(rng()));
  }
  int n = int(A.size());
  uint16_t* out = dev.alloc_n<uint16_t>(size_t(n) * 48);
  SIM_EXPECT_OK(mod.launch("half_ops", {uint32_t((n + 127) / 128)}, {128},
                           Args().add(dev.upload(A)).add(dev.upload(B)).add(dev.upload(C)).add(dev.upload(F)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    std::vector<uint16_t> r = ref(A[i], B[i], C[i], F[i]);
    ASSERT_EQ(out[i * 48 + r.size() - 1], r.size() - 1) << "result count";
    for (size_t k = 0; k < r.size() - 1; ++k) {
      uint16_t got = out[i * 48 + k];
      if ((k == 8 || k == 9) && hnan(A[i])) continue;   // sign ops on NaN: any NaN
      if (k == r.size() - 2) {                            // ex2.approx.f16: within 1 ulp
        if (hnan(r[k])) { ASSERT_TRUE(hnan(got)); continue; }
        ASSERT_LE(std::abs(int(got) - int(r[k])), 1) << "ex2.f16 a=" << hf(A[i]);
        continue;
      }
      ASSERT_EQ(got, r[k]) << "op " << k << " a=" << std::hex << A[i] << " b=" << B[i] << " c=" << C[i]
                           << std::dec << " f=" << F[i];
    }
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
