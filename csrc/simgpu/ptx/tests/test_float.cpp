// f32/f64 arithmetic, rounding modes, ftz/sat, NaN rules, conversions and
// approximations against host references.  Exact operations compare bits;
// .approx functions compare within (tighter than) the GPU's documented error.
#include <cfenv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

constexpr uint32_t kNaN32 = 0x7fffffff;
constexpr uint64_t kNaN64 = 0x7fffffffffffffffull;

// Runs f with the host FPU in rounding mode `mode`.  Operands are read
// through volatiles inside f, so nothing is evaluated before the switch, and
// the result passes through a volatile asm, so GCC (even with
// -frounding-math) cannot compute it after the mode is restored.
template <class F>
auto in_mode(int mode, F f) {
  int old = std::fegetround();
  std::fesetround(mode);
  auto r = f();
  asm volatile("" : "+x"(r) : : "memory");
  std::fesetround(old);
  return r;
}

uint32_t cf(float r) { return r != r ? kNaN32 : f_bits(r); }
uint64_t cd(double r) { return r != r ? kNaN64 : d_bits(r); }
float ftz(float x) { return std::fabs(x) < FLT_MIN ? std::copysign(0.0f, x) : x; }
float sat(float x) { return x > 0 ? (x < 1 ? x : 1.0f) : 0.0f; }

template <class T> T pmin(T a, T b) {
  if (a != a) return b;
  if (b != b) return a;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}
template <class T> T pmax(T a, T b) {
  if (a != a) return b;
  if (b != b) return a;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

template <class I> I f2i(double x, double (*rnd)(double)) {
  if (x != x) return 0;
  x = rnd(x);
  if (x <= double(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  if (x >= double(std::numeric_limits<I>::max())) return std::numeric_limits<I>::max();
  return I(x);
}
double rne(double x) { return std::nearbyint(x); }

std::vector<uint32_t> ref_f32(float a, float b, float c) {
  std::vector<uint32_t> o;
  const int modes[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};
  auto op = [&](int mode, auto fn) { return cf(in_mode(mode, fn)); };
  for (int m : modes) o.push_back(op(m, [&] { volatile float x = a, y = b; return float(x + y); }));
  o.push_back(op(FE_TOWARDZERO, [&] { volatile float x = a, y = b; return float(x - y); }));
  for (int m : modes) o.push_back(op(m, [&] { volatile float x = a, y = b; return float(x * y); }));
  for (int m : modes) o.push_back(op(m, [&] { volatile float x = a, y = b, z = c; return std::fma(float(x), float(y), float(z)); }));
  for (int m : modes) o.push_back(op(m, [&] { volatile float x = a, y = b; return float(x / y); }));
  o.push_back(op(FE_TONEAREST, [&] { volatile float x = a; return std::sqrt(float(x)); }));
  o.push_back(op(FE_TOWARDZERO, [&] { volatile float x = a; return std::sqrt(float(x)); }));
  o.push_back(op(FE_UPWARD, [&] { volatile float x = a; return std::sqrt(float(x)); }));
  o.push_back(op(FE_TONEAREST, [&] { volatile float x = a; return 1.0f / float(x); }));
  o.push_back(op(FE_DOWNWARD, [&] { volatile float x = a; return 1.0f / float(x); }));
  o.push_back(cf(ftz(ftz(a) + ftz(b))));
  o.push_back(cf(sat(ftz(ftz(a) * ftz(b)))));
  o.push_back(cf(sat(std::fma(a, b, c))));
  o.push_back(cf(ftz(std::fma(ftz(a), ftz(b), ftz(c)))));
  o.push_back(cf(pmin(a, b)));
  o.push_back(cf(pmax(a, b)));
  o.push_back(a != a || b != b ? kNaN32 : cf(pmin(a, b)));
  o.push_back(a != a || b != b ? kNaN32 : cf(pmax(a, b)));
  {
    float r = pmin(std::fabs(a), std::fabs(b));
    bool neg = std::signbit(a) != std::signbit(b);
    o.push_back(r != r ? kNaN32 : f_bits(std::copysign(r, neg ? -1.0f : 1.0f)));
  }
  o.push_back(f_bits(std::copysign(b, a)));
  o.push_back(f_bits(a) ^ 0x80000000u);
  o.push_back(f_bits(ftz(a)) & 0x7fffffffu);
  o.push_back(uint32_t(std::isfinite(a)) | uint32_t(std::isinf(a)) << 1 | uint32_t(!std::isnan(a)) << 2 |
              uint32_t(std::isnan(a)) << 3 | uint32_t(std::isnormal(a)) << 4 |
              uint32_t(std::fpclassify(a) == FP_SUBNORMAL) << 5);
  o.push_back(cf(std::nearbyint(a)));
  o.push_back(cf(std::floor(a)));
  o.push_back(cf(sat(a)));
  o.push_back(cf(ftz(a)));
  o.push_back(uint32_t(f2i<int32_t>(a, rne)));
  o.push_back(uint32_t(f2i<int32_t>(a, std::trunc)));
  o.push_back(uint32_t(f2i<int32_t>(a, std::floor)));
  o.push_back(f2i<uint32_t>(a, std::ceil));
  o.push_back(uint16_t(f2i<int16_t>(a, std::trunc)));
  uint32_t u = f_bits(b);
  o.push_back(f_bits(in_mode(FE_TOWARDZERO, [&] { volatile uint32_t v = u; return float(v); })));
  o.push_back(f_bits(in_mode(FE_DOWNWARD, [&] { volatile int32_t v = int32_t(u); return float(v); })));
  o.push_back(f_bits(in_mode(FE_UPWARD, [&] { volatile int32_t v = int32_t(u); return float(v); })));
  uint64_t w = uint64_t(f_bits(b)) << 32 | f_bits(c);
  o.push_back(f_bits(in_mode(FE_TONEAREST, [&] { volatile uint64_t v = w; return float(v); })));
  o.push_back(f_bits(in_mode(FE_TOWARDZERO, [&] { volatile uint64_t v = w; return float(v); })));
  o.push_back(f_bits(in_mode(FE_UPWARD, [&] { volatile int64_t v = int64_t(w); return float(v); })));
  o.push_back(uint32_t(o.size()));
  return o;
}

std::vector<uint64_t> ref_f64(double a, double b, double c) {
  std::vector<uint64_t> o;
  auto op = [&](int mode, auto fn) { return cd(in_mode(mode, fn)); };
  const int modes[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};
  for (int m : modes) o.push_back(op(m, [&] { volatile double x = a, y = b; return double(x + y); }));
  o.push_back(op(FE_TONEAREST, [&] { volatile double x = a, y = b; return double(x * y); }));
  o.push_back(op(FE_TOWARDZERO, [&] { volatile double x = a, y = b; return double(x * y); }));
  for (int m : {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD})
    o.push_back(op(m, [&] { volatile double x = a, y = b, z = c; return std::fma(double(x), double(y), double(z)); }));
  for (int m : {FE_TONEAREST, FE_TOWARDZERO, FE_UPWARD})
    o.push_back(op(m, [&] { volatile double x = a, y = b; return double(x / y); }));
  o.push_back(op(FE_TONEAREST, [&] { volatile double x = a; return std::sqrt(double(x)); }));
  o.push_back(op(FE_DOWNWARD, [&] { volatile double x = a; return std::sqrt(double(x)); }));
  o.push_back(op(FE_TONEAREST, [&] { volatile double x = a; return 1.0 / double(x); }));
  o.push_back(cd(pmin(a, b)));
  o.push_back(cd(pmax(a, b)));
  o.push_back(d_bits(a) ^ 0x8000000000000000ull);
  o.push_back(d_bits(a) & 0x7fffffffffffffffull);
  for (int m : modes) o.push_back(cf(in_mode(m, [&] { volatile double x = a; return float(x); })));
  o.push_back(uint64_t(f2i<int64_t>(a, rne)));
  o.push_back(f2i<uint64_t>(a, std::trunc));
  o.push_back(uint32_t(f2i<int32_t>(a, std::ceil)));
  uint64_t w = d_bits(b);
  o.push_back(d_bits(in_mode(FE_TONEAREST, [&] { volatile uint64_t v = w; return double(v); })));
  o.push_back(d_bits(in_mode(FE_TOWARDZERO, [&] { volatile int64_t v = int64_t(w); return double(v); })));
  o.push_back(d_bits(in_mode(FE_DOWNWARD, [&] { volatile uint64_t v = w; return double(v); })));
  o.push_back(cd(double(float(c))));
  o.push_back(cd(std::ceil(a)));
  o.push_back(uint64_t(o.size()));
  return o;
}

std::vector<float> f32_inputs(std::mt19937& rng, size_t n) {
  const float edge[] = {0.0f, -0.0f, 1.0f, -1.0f, 1.5f, -2.5f, 0.5f, 3.0f, 1e-40f, -3e-42f, FLT_MIN, -FLT_MIN,
                        FLT_MAX, -FLT_MAX, INFINITY, -INFINITY, NAN, 16777217.0f, 0.1f, 1e20f, -7e9f, 4294967296.0f};
  std::vector<float> v(std::begin(edge), std::end(edge));
  std::uniform_real_distribution<float> u(-100, 100);
  while (v.size() < n) {
    uint32_t r = rng();
    v.push_back(r % 3 == 0 ? bits_f(rng()) : (r % 3 == 1 ? u(rng) : u(rng) * 1e-36f));
  }
  return v;
}

TEST(Float, F32Exact) {
  SIM_NEED_PTX(ptx, "float_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::mt19937 rng(3);
  std::vector<float> A = f32_inputs(rng, 400), B, C;
  // Pair every edge with every other edge, then random triples.
  for (size_t i = 0; i < A.size(); ++i) {
    B.push_back(A[(i * 7 + 3) % A.size()]);
    C.push_back(A[(i * 13 + 5) % A.size()]);
  }
  for (size_t i = 0; i < 22; ++i)
    for (size_t j = 0; j < 22; ++j) A.push_back(A[i]), B.push_back(A[j]), C.push_back(A[(i + j) % 22]);
  int n = int(A.size());
  uint32_t* out = dev.alloc_n<uint32_t>(size_t(n) * 64);
  SIM_EXPECT_OK(mod.launch("f32_ops", {uint32_t((n + 127) / 128)}, {128},
                           Args().add(dev.upload(A)).add(dev.upload(B)).add(dev.upload(C)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    std::vector<uint32_t> r = ref_f32(A[i], B[i], C[i]);
    ASSERT_EQ(out[i * 64 + r.size() - 1], r.size() - 1) << "result count";
    for (size_t k = 0; k < r.size() - 1; ++k) {
      uint32_t got = out[i * 64 + k];
      if (k == 32 && std::isnan(A[i])) continue;  // neg of NaN: any NaN
      ASSERT_EQ(got, r[k]) << "op " << k << " a=" << A[i] << " b=" << B[i] << " c=" << C[i] << " got "
                           << bits_f(got) << " want " << bits_f(r[k]);
    }
  }
}

TEST(Float, F64Exact) {
  SIM_NEED_PTX(ptx, "float_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::mt19937_64 rng(5);
  const double edge[] = {0.0, -0.0, 1.0, -1.5, 1e-310, -4e-320, DBL_MIN, DBL_MAX, INFINITY, -INFINITY, NAN,
                         9007199254740993.0, 0.1, 3.0, 1e300, -2.5e18, 1.8446744073709552e19, 3e38, 1.0000001};
  std::vector<double> A(std::begin(edge), std::end(edge)), B, C;
  std::uniform_real_distribution<double> u(-1e3, 1e3);
  while (A.size() < 300) A.push_back(rng() % 2 ? bits_d(rng()) : u(rng));
  for (size_t i = 0; i < A.size(); ++i) B.push_back(A[(i * 7 + 1) % A.size()]), C.push_back(A[(i * 11 + 2) % A.size()]);
  int n = int(A.size());
  uint64_t* out = dev.alloc_n<uint64_t>(size_t(n) * 40);
  SIM_EXPECT_OK(mod.launch("f64_ops", {uint32_t((n + 63) / 64)}, {64},
                           Args().add(dev.upload(A)).add(dev.upload(B)).add(dev.upload(C)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    std::vector<uint64_t> r = ref_f64(A[i], B[i], C[i]);
    ASSERT_EQ(out[i * 40 + r.size() - 1], r.size() - 1) << "result count";
    for (size_t k = 0; k < r.size() - 1; ++k) {
      if ((k == 17 || k == 18) && std::isnan(A[i])) continue;
      ASSERT_EQ(out[i * 40 + k], r[k]) << "op " << k << " a=" << A[i] << " b=" << B[i] << " c=" << C[i];
    }
  }
}

// |got - want| in units of the last place of want (float).
double ulps(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : 1e9;
  if (std::isinf(want)) return got == want ? 0 : 1e9;
  float w = float(want);
  if (std::isinf(w)) return got == w ? 0 : 1e9;  // overflows in f32
  float ulp = std::nextafter(std::fabs(w), INFINITY) - std::fabs(w);
  if (ulp == 0 || std::isinf(ulp)) ulp = FLT_TRUE_MIN;
  return std::fabs(double(got) - want) / ulp;
}

TEST(Float, F32Approx) {
  SIM_NEED_PTX(ptx, "float_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> ua(-20, 20), ub(1e-3f, 100);
  std::vector<float> A = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 3.14159265f, -126.5f, 127.9f, INFINITY, -INFINITY, NAN};
  std::vector<float> B = {1.0f, 2.0f, 0.0f, 4.0f, 1e-30f, 1e30f, 0.25f, 7.0f, INFINITY, 3.0f, 2.0f};
  while (A.size() < 500) A.push_back(ua(rng)), B.push_back(ub(rng));
  int n = int(A.size());
  float* out = dev.alloc_n<float>(size_t(n) * 16);
  SIM_EXPECT_OK(mod.launch("f32_approx", {uint32_t((n + 127) / 128)}, {128},
                           Args().add(dev.upload(A)).add(dev.upload(B)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    float a = A[i], b = B[i];
    const float* o = out + i * 16;
    ASSERT_EQ(o[15], 15.0f);
    auto abs_ok = [](float got, double want, double tol) {
      if (std::isnan(want)) return bool(std::isnan(got));
      if (std::isinf(want)) return got == want;
      return std::fabs(double(got) - want) <= tol;
    };
    EXPECT_LE(ulps(o[0], std::exp2(double(a))), 2) << "ex2 " << a;
    if (b >= 0.5f && b <= 2.0f) {
      EXPECT_TRUE(abs_ok(o[1], std::log2(double(b)), 0x1p-22)) << "lg2 " << b;
    } else {
      EXPECT_LE(ulps(o[1], std::log2(double(b))), 2) << "lg2 " << b;
    }
    if (std::fabs(a) <= 100) {
      EXPECT_TRUE(abs_ok(o[2], std::sin(double(a)), 0x1p-20)) << "sin " << a;
      EXPECT_TRUE(abs_ok(o[3], std::cos(double(a)), 0x1p-20)) << "cos " << a;
    }
    EXPECT_LE(ulps(o[4], 1.0 / std::sqrt(double(b))), 2) << "rsqrt " << b;
    EXPECT_LE(ulps(o[5], 1.0 / double(a)), 1) << "rcp " << a;
    EXPECT_LE(ulps(o[6], std::sqrt(double(b))), 1) << "sqrt " << b;
    if (!std::isnan(a)) {
      EXPECT_LE(std::fabs(o[7] - std::tanh(double(a))), 0x1p-11 * std::fabs(std::tanh(double(a))) + 1e-30) << "tanh " << a;
    }
    EXPECT_LE(ulps(o[8], double(a) / double(b)), 2) << "div.approx " << a << "/" << b;
    EXPECT_LE(ulps(o[9], double(a) / double(b)), 2) << "div.full " << a << "/" << b;
    double e2 = std::exp2(double(a));
    if (std::fabs(e2) >= FLT_MIN || std::isinf(e2) || std::isnan(e2)) {
      EXPECT_LE(ulps(o[10], e2), 2) << "ex2.ftz " << a;
    } else {
      EXPECT_EQ(o[10], 0.0f) << "ex2.ftz flushes " << a;
    }
    // CUDA's documented maximum ulp errors: expf 2, logf 1, sinf 2, powf 4.
    EXPECT_LE(ulps(o[11], std::exp(double(a))), 2) << "expf " << a;
    EXPECT_LE(ulps(o[12], std::log(double(b))), 1) << "logf " << b;
    if (std::fabs(a) < 1e4f) {
      EXPECT_LE(ulps(o[13], std::sin(double(a))), 2) << "sinf " << a;
    }
    EXPECT_LE(ulps(o[14], std::pow(double(b), 1.7)), 4) << "powf " << b;
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
