// Whole programs: tiled shared-memory matmul and the benchmark kernel,
// checked against host computations.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

TEST(Programs, TiledMatmul) {
  SIM_NEED_PTX(ptx, "bench");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 64;
  std::vector<float> A(n * n), B(n * n);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : A) v = u(rng);
  for (auto& v : B) v = u(rng);
  float* C = dev.alloc_n<float>(n * n);
  SIM_EXPECT_OK(mod.launch("matmul_tiled", {n / 16, n / 16}, {16, 16},
                           Args().add(static_cast<const float*>(dev.upload(A))).add(static_cast<const float*>(dev.upload(B))).add(C).add(n)));
  // Same accumulation order as the kernel (k ascending, fused multiply-add):
  // the result must be bit-identical.
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < n; ++c) {
      float acc = 0;
      for (int k = 0; k < n; ++k) acc = std::fma(A[r * n + k], B[k * n + c], acc);
      ASSERT_EQ(C[r * n + c], acc) << r << "," << c;
    }
}

TEST(Programs, ArithmeticKernel) {
  SIM_NEED_PTX(ptx, "bench");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int blocks = 3, threads = 64, iters = 37;
  float* out = dev.alloc_n<float>(blocks * threads);
  SIM_EXPECT_OK(mod.launch("arith", {blocks}, {threads}, Args().add(out).add(iters)));
  for (int i = 0; i < blocks * threads; ++i) {
    // nvcc contracts a*b+c and the loop body into FMAs; mirror that.
    float a = float(i) * 0.001f, b = 1.0001f, c = 0.5f;
    unsigned x = unsigned(i);
    for (int k = 0; k < iters; ++k) {
      a = std::fma(b, a, c);
      c = std::fma(c, 0.999f, -(a * 0.0001f));
      x = x * 1664525u + 1013904223u;
      b = std::fma(float(x & 1), 1e-7f, b);
    }
    float want = a + b + c + float(x);
    EXPECT_NEAR(out[i], want, std::fabs(want) * 1e-6f) << i;
  }
}

TEST(Programs, CubBlockPrimitives) {
  SIM_NEED_PTX(ptx, "cub_blocks");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> in(512);
  std::mt19937 rng(8);
  for (auto& v : in) v = int(rng() % 2000) - 1000;
  int* out = dev.alloc_n<int>(200 + 512);
  float* fout = dev.alloc_n<float>(128);
  SIM_EXPECT_OK(mod.launch("cub_kernels", {1}, {128}, Args().add(static_cast<const int*>(dev.upload(in))).add(out).add(fout)));
  int sum = 0;
  for (int t = 0; t < 128; ++t) sum += in[t];
  EXPECT_EQ(out[0], sum);
  int ex = 0;
  for (int t = 0; t < 128; ++t) {
    EXPECT_EQ(out[1 + t], ex) << t;
    ex += in[t];
  }
  std::vector<int> sorted(in);
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 512; ++i) EXPECT_EQ(out[200 + i], sorted[i]) << i;
  for (int t = 0; t < 128; ++t) {
    float incl = 0;
    for (int k = t / 32 * 32; k <= t; ++k) incl += float(in[k]) * 0.5f;
    EXPECT_EQ(fout[t], incl) << t;
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
