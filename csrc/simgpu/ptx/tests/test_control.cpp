// Calls (direct, recursive, indirect, divergent), switch tables, exit inside
// callees, warps waiting on each other, trap.
#include <algorithm>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
int sum_to(int n) {
  int s = 0;
  for (int i = 0; i <= n; ++i) {
    if (i % 7 == 6) continue;
    s += i;
    if (s > 500) return -s;
  }
  return s;
}

TEST(Control, CallsRecursionPointersExit) {
  SIM_NEED_PTX(ptx, "control");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 100;
  int* out = dev.alloc_n<int>(n * 8);
  SIM_EXPECT_OK(mod.launch("calls", {2}, {64}, Args().add(out).add(n)));
  for (int t = 0; t < n; ++t) {
    const int* o = out + t * 8;
    EXPECT_EQ(o[0], fib(t % 16)) << t;
    int k = t % 5;
    EXPECT_EQ(o[1], t * k + 3) << t;
    EXPECT_EQ(o[2], int((1.5 * t - 0.25 * k) * 4.0)) << t;
    int v = t % 3 == 0 ? t + 11 : t % 3 == 1 ? t * 3 : -t;
    EXPECT_EQ(o[3], v) << t;
    EXPECT_EQ(o[4], (t & 1) ? fib(t % 10) : -1) << t;
    EXPECT_EQ(o[5], sum_to(t * 3)) << t;
    bool exited = t % 4 == 3;
    EXPECT_EQ(o[6], exited ? 99 : t * 2) << t;
    EXPECT_EQ(o[7], exited ? 0 : 1) << t;
  }
  const KernelInfo& k = mod.program().kernels()[size_t(mod.program().find_kernel("calls"))];
  EXPECT_GT(k.num_regs, 0u);
  EXPECT_LE(k.num_regs, 255u);
}

TEST(Control, SwitchTable) {
  SIM_NEED_PTX(ptx, "control");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> in(64);
  for (int i = 0; i < 64; ++i) in[i] = (i * 5) % 14 - 1;
  int* out = dev.alloc_n<int>(64);
  SIM_EXPECT_OK(mod.launch("switcher", {1}, {64}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < 64; ++t) {
    int v = in[t], r;
    switch (v) {
      case 0: r = v + 100; break;
      case 1: r = v * 7; break;
      case 2: r = v - 3; break;
      case 3: r = v ^ 0x55; break;
      case 4: r = v << 3; break;
      case 5: r = v * v * v; break;
      case 6: r = 42; break;
      case 7: r = -v; break;
      case 8: r = v | 0x100; break;
      case 9: r = v * 1000; break;
      case 10: r = v + v; break;
      default: r = -1;
    }
    EXPECT_EQ(out[t], r) << t;
  }
}

TEST(Control, BrxJumpTable) {
  SIM_NEED_PTX(ptx, "control");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> in(64);
  for (int i = 0; i < 64; ++i) in[i] = (i * 7) / 3;
  int* out = dev.alloc_n<int>(64);
  SIM_EXPECT_OK(mod.launch("jump_table", {1}, {64}, Args().add(dev.upload(in)).add(out)));
  const int vals[4] = {10, 21, 32, 43};
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[t], vals[unsigned(in[t]) % 4] + t) << t;
}

TEST(Control, WarpsWaitOnEachOther) {
  SIM_NEED_PTX(ptx, "control");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  int* out = dev.alloc_n<int>(1);
  SIM_EXPECT_OK(mod.launch("producer_consumer", {1}, {64}, Args().add(out)));
  EXPECT_EQ(out[0], 4999 * 5000 / 2);
}

TEST(Control, IntraWarpSpinLock) {
  SIM_NEED_PTX(ptx, "control");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int blocks = 2, threads = 48, n = blocks * threads;
  int* lock = dev.alloc_n<int>(1);
  int* counter = dev.alloc_n<int>(1);
  int* order = dev.alloc_n<int>(n);
  SIM_EXPECT_OK(mod.launch("spin_lock", {blocks}, {threads}, Args().add(lock).add(counter).add(order)));
  EXPECT_EQ(*counter, n);
  std::vector<int> seen(order, order + n);
  std::sort(seen.begin(), seen.end());
  for (int i = 0; i < n; ++i) ASSERT_EQ(seen[i], i);  // every thread held the lock exactly once
}

TEST(Control, TrapFaults) {
  SIM_NEED_PTX(ptx, "control");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  int* out = dev.alloc_n<int>(64);
  Outcome o = mod.launch("trapper", {1}, {64}, Args().add(out).add(37));
  EXPECT_EQ(o.fault, Fault::Trap) << o.detail;
  EXPECT_NE(o.detail.find("thread (37,0,0)"), std::string::npos) << o.detail;
  SIM_EXPECT_OK(mod.launch("trapper", {1}, {64}, Args().add(out).add(1000)));
}

}  // namespace
}  // namespace simgpu::ptx::test
