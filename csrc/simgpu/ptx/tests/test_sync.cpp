// Barriers, named barriers, deadlock detection, cooperative grid sync and
// asynchronous copies (cuda::pipeline, cuda::barrier, cp.async(.bulk)).
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

TEST(Sync, BarrierReductions) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  for (int variant = 0; variant < 2; ++variant) {
    const int n = 200;
    std::vector<int> in(n);
    for (int i = 0; i < n; ++i) in[i] = (i * 13) % 9 - (variant ? 0 : 1);
    if (variant) in[150] = 42;
    int* out = dev.alloc_n<int>(n * 3);
    SIM_EXPECT_OK(mod.launch("bar_reduce", {1}, {n}, Args().add(dev.upload(in)).add(out)));
    int cnt = 0;
    bool all = true, any = false;
    for (int v : in) cnt += v > 3, all = all && v >= 0, any = any || v == 42;
    for (int t = 0; t < n; ++t) {
      EXPECT_EQ(out[t * 3], cnt);
      EXPECT_EQ(out[t * 3 + 1], int(all));
      EXPECT_EQ(out[t * 3 + 2], int(any));
    }
  }
}

TEST(Sync, NamedBarriersWarpSpecialisation) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  int* out = dev.alloc_n<int>(64);
  SIM_EXPECT_OK(mod.launch("named_barriers", {1}, {128}, Args().add(out).add(10)));
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[t], t * 45);
}

TEST(Sync, DeadlockIsReportedNotHung) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  int* out = dev.alloc_n<int>(64);
  Outcome o = mod.launch("deadlock", {1}, {64}, Args().add(out));
  EXPECT_EQ(o.fault, Fault::LaunchFailed);
  EXPECT_NE(o.detail.find("deadlock"), std::string::npos) << o.detail;
}

TEST(Sync, CooperativeGridSync) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const KernelInfo& k = mod.program().kernels()[size_t(mod.program().find_kernel("grid_sync"))];
  EXPECT_TRUE(k.uses_grid_sync);
  EXPECT_FALSE(mod.program().kernels()[size_t(mod.program().find_kernel("bar_reduce"))].uses_grid_sync);
  const int blocks = 12, threads = 64, n = blocks * threads - 5;
  int* data = dev.alloc_n<int>(n);
  int* out = dev.alloc_n<int>(n);
  SIM_EXPECT_OK(mod.launch("grid_sync", {blocks}, {threads}, Args().add(data).add(out).add(n), 0, true));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(out[i], ((i + 97) % n) * 2 + 1) << i;
    EXPECT_EQ(data[i], 0);
  }
  // Without a cooperative launch the grid group is invalid: the kernel traps.
  Outcome o = mod.launch("grid_sync", {blocks}, {threads}, Args().add(data).add(out).add(n));
  EXPECT_EQ(o.fault, Fault::Trap) << o.detail;
}

TEST(Sync, PipelineMemcpyAsync) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int stages = 7;
  std::vector<float> in(stages * 128);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i) * 0.5f;
  float* out = dev.alloc_n<float>(in.size());
  SIM_EXPECT_OK(mod.launch("pipeline_copy", {1}, {128}, Args().add(dev.upload(in)).add(out).add(stages)));
  for (int s = 0; s < stages; ++s)
    for (int t = 0; t < 128; ++t) ASSERT_EQ(out[s * 128 + t], in[s * 128 + t] * 2.0f + float(s)) << s << " " << t;
}

TEST(Sync, BarrierMemcpyAsyncAndBulk) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<float> in(512);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i) + 0.25f;
  float* out = dev.alloc_n<float>(512);
  SIM_EXPECT_OK(mod.launch("barrier_copy", {1}, {256}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < 256; ++t) {
    ASSERT_EQ(out[t], in[255 - t]) << t;
    ASSERT_EQ(out[256 + t], in[256 + t] + 1.0f) << t;
  }
}

TEST(Sync, CooperativeGroupsMemcpyAsync) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> in(512);
  for (int i = 0; i < 512; ++i) in[i] = i * 11 - 7;
  int* out = dev.alloc_n<int>(160);
  SIM_EXPECT_OK(mod.launch("cg_copy", {1}, {160}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < 160; ++t) EXPECT_EQ(out[t], in[(t * 3) % 512]);
}

TEST(Sync, CpAsyncZeroFill) {
  SIM_NEED_PTX(ptx, "sync");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> in(128);
  for (int i = 0; i < 128; ++i) in[i] = i + 1;
  int* out = dev.alloc_n<int>(128);
  SIM_EXPECT_OK(mod.launch("raw_cp_async", {1}, {32}, Args().add(dev.upload(in)).add(out)));
  for (int t = 0; t < 32; ++t)
    for (int k = 0; k < 4; ++k) EXPECT_EQ(out[t * 4 + k], k < t % 4 ? in[t * 4 + k] : 0) << t << " " << k;
}

}  // namespace
}  // namespace simgpu::ptx::test
