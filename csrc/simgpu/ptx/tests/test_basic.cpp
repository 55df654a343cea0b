// End-to-end basics: launch geometry, arithmetic, divergence and loops.
#include <cmath>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

TEST(Basic, Saxpy) {
  SIM_NEED_PTX(ptx, "basic");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 1000;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = float(i) * 0.5f, y[i] = float(n - i);
  float* dx = dev.upload(x);
  float* dy = dev.upload(y);
  SIM_EXPECT_OK(mod.launch("saxpy", {4}, {256}, Args().add(n).add(2.5f).add(dx).add(dy)));
  for (int i = 0; i < n; ++i) ASSERT_EQ(dy[i], std::fma(2.5f, x[i], y[i])) << i;
}

TEST(Basic, CollatzDivergentLoops) {
  SIM_NEED_PTX(ptx, "basic");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 300;
  std::vector<unsigned> in(n);
  for (int i = 0; i < n; ++i) in[i] = unsigned(i + 1);
  unsigned* din = dev.upload(in);
  unsigned* dout = dev.alloc_n<unsigned>(n);
  SIM_EXPECT_OK(mod.launch("collatz", {3}, {128}, Args().add(din).add(dout).add(n)));
  for (int i = 0; i < n; ++i) {
    unsigned v = in[i], s = 0;
    while (v != 1) {
      v = (v & 1) ? 3 * v + 1 : v / 2;
      if (++s > 1000) break;
    }
    ASSERT_EQ(dout[i], s) << i;
  }
}

TEST(Basic, NestedBranchesEarlyExit) {
  SIM_NEED_PTX(ptx, "basic");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> in(64);
  for (int i = 0; i < 64; ++i) in[i] = i * 7 - 20;
  int* din = dev.upload(in);
  int* dout = dev.alloc_n<int>(64);
  for (int i = 0; i < 64; ++i) dout[i] = 12345;
  SIM_EXPECT_OK(mod.launch("nested", {1}, {64}, Args().add(din).add(dout)));
  for (int t = 0; t < 64; ++t) {
    int v = in[t], r = 0;
    bool early = false;
    if (v % 3 == 0) {
      r = (v % 2 == 0) ? 1 : 2;
      for (int k = 0; k < (v & 7); ++k) {
        if (k == 5) break;
        r += k * v;
        if ((r ^ k) & 1) continue;
        r -= 1;
      }
    } else if (v % 3 == 1) {
      r = v * v;
      while (r > 100) {
        r -= 37;
        if (r == 50) { early = true; break; }
      }
    } else {
      switch (v & 3) {
        case 0: r = 10; break;
        case 1: r = 20; break;
        case 2: r = v << 2; break;
        default: r = -v;
      }
    }
    ASSERT_EQ(dout[t], early ? 12345 : r) << t;
  }
}

TEST(Basic, LaunchGeometry) {
  SIM_NEED_PTX(ptx, "basic");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  Dim3 grid{3, 2, 2}, block{5, 3, 2};
  size_t n = grid.count() * block.count();
  unsigned* out = dev.alloc_n<unsigned>(4 * n);
  SIM_EXPECT_OK(mod.launch("dims", grid, block, Args().add(out)));
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 5; ++tx) {
              unsigned bid = bx + 3 * (by + 2 * bz), tid = tx + 5 * (ty + 3 * tz);
              unsigned* o = out + 4 * (bid * 30 + tid);
              ASSERT_EQ(o[0], tx | ty << 8 | tz << 16);
              ASSERT_EQ(o[1], bx | by << 8 | bz << 16);
              ASSERT_EQ(o[2], 5u | 3u << 8 | 2u << 16);
              ASSERT_EQ(o[3], 3u | 2u << 8 | 2u << 16);
            }
}

}  // namespace
}  // namespace simgpu::ptx::test
