// shfl, vote, match, redux, activemask, elect, cooperative-groups reduce.
#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

std::vector<int> inputs(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> v(n);
  for (auto& x : v) x = int(rng() % 40) - 5;
  return v;
}

TEST(Warp, Shuffles) {
  SIM_NEED_PTX(ptx, "warp");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 64;
  std::vector<int> in = inputs(n, 1);
  int* out = dev.alloc_n<int>(n * 12);
  SIM_EXPECT_OK(mod.launch("shuffles", {1}, {n}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < n; ++t) {
    int w = t / 32 * 32, l = t % 32;
    auto at = [&](int lane) { return in[w + lane]; };
    const int* o = out + t * 12;
    int sum = 0;
    for (int k = 0; k < 32; ++k) sum += at(k);
    EXPECT_EQ(o[0], sum) << t;
    EXPECT_EQ(o[1], (l % 16) >= 3 ? at(l - 3) : at(l)) << t;
    EXPECT_EQ(o[2], at(l ^ 5)) << t;
    EXPECT_EQ(o[3], at((l & ~7) | ((l * 7) % 32 & 7))) << t;
    EXPECT_EQ(o[4], (l % 16) + 6 < 16 ? at(l + 6) : at(l)) << t;
    EXPECT_EQ(o[5], l >= 2 ? at(l - 2) : at(l)) << t;
    EXPECT_EQ(o[6], l >= 2 ? 1 : 0) << t;
    int sc = 0;
    for (int k = 0; k <= l; ++k) sc += at(k);
    EXPECT_EQ(o[7], sc) << t;
  }
}

TEST(Warp, VotesAndMatches) {
  SIM_NEED_PTX(ptx, "warp");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 48;  // a full warp and a partial one
  std::vector<int> in = inputs(n, 2);
  in[40] = 7;
  unsigned* out = dev.alloc_n<unsigned>(n * 12);
  SIM_EXPECT_OK(mod.launch("votes", {1}, {n}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < n; ++t) {
    int w = t / 32 * 32, l = t % 32, lanes = std::min(32, n - w);
    unsigned full = lanes == 32 ? ~0u : (1u << lanes) - 1;
    const unsigned* o = out + t * 12;
    unsigned ballot = 0, odd = 0;
    bool all = true, any7 = false;
    bool u0 = false, u1 = false;
    for (int k = 0; k < lanes; ++k) {
      int v = in[w + k];
      ballot |= unsigned(v > 10) << k;
      all = all && v >= 0;
      any7 = any7 || v == 7;
      (v & 0x100 ? u1 : u0) = true;
      if (k < 20) odd |= unsigned(v & 1) << k;
    }
    EXPECT_EQ(o[0], ballot) << t;
    EXPECT_EQ(o[1], unsigned(all)) << t;
    EXPECT_EQ(o[2], unsigned(any7)) << t;
    EXPECT_EQ(o[3], unsigned(!(u0 && u1))) << t;
    EXPECT_EQ(o[4], full) << t;
    if (l < 20) {
      unsigned m20 = full & 0xfffff;
      EXPECT_EQ(o[5], m20) << t;
      EXPECT_EQ(o[6], odd & m20) << t;
      EXPECT_EQ(o[7], unsigned(__builtin_popcount(m20))) << t;
    }
    unsigned ma = 0, m64 = 0;
    bool same = true;
    for (int k = 0; k < lanes; ++k) {
      if (in[w + k] % 5 == in[t] % 5) ma |= 1u << k;
      if (in[w + k] % 3 == in[t] % 3) m64 |= 1u << k;
      same = same && in[w + k] / 1000 == in[w] / 1000;
    }
    EXPECT_EQ(o[8], ma) << t;
    EXPECT_EQ(o[9], same ? full : 0u) << t;
    EXPECT_EQ(o[10], unsigned(same)) << t;
    EXPECT_EQ(o[11], m64) << t;
  }
}

TEST(Warp, ReduxAndTiles) {
  SIM_NEED_PTX(ptx, "warp");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 64;
  std::vector<int> in = inputs(n, 3);
  int* out = dev.alloc_n<int>(n * 8);
  SIM_EXPECT_OK(mod.launch("reduxes", {1}, {n}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < n; ++t) {
    int w = t / 32 * 32;
    int add = 0, mn = INT32_MAX;
    unsigned mx = 0, an = ~0u, orr = 0, xr = 0;
    for (int k = 0; k < 32; ++k) {
      int v = in[w + k];
      add += v;
      mn = std::min(mn, v);
      mx = std::max(mx, unsigned(v));
      an &= unsigned(v);
      orr |= unsigned(v);
      xr ^= unsigned(v);
    }
    int tile = 0;
    for (int k = t / 16 * 16; k < t / 16 * 16 + 16; ++k) tile += in[k];
    const int* o = out + t * 8;
    EXPECT_EQ(o[0], add);
    EXPECT_EQ(o[1], mn);
    EXPECT_EQ(unsigned(o[2]), mx);
    EXPECT_EQ(unsigned(o[3]), an);
    EXPECT_EQ(unsigned(o[4]), orr);
    EXPECT_EQ(unsigned(o[5]), xr);
    EXPECT_EQ(o[6], tile);
    EXPECT_EQ(o[7], 0);
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
