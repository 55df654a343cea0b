// Atomics under contention across blocks and worker threads.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

TEST(Atomics, ContentionAcrossBlocks) {
  SIM_NEED_PTX(ptx, "atomics");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const unsigned blocks = 24, threads = 128, n = blocks * threads;
  int* icnt = dev.alloc_n<int>(1);
  float* fsum = dev.alloc_n<float>(1);
  double* dsum = dev.alloc_n<double>(1);
  unsigned* umax = dev.alloc_n<unsigned>(1);
  int* imin = dev.alloc_n<int>(1);
  *imin = 1 << 30;
  unsigned* wrap = dev.alloc_n<unsigned>(1);
  unsigned* dec = dev.alloc_n<unsigned>(1);
  *dec = 5000;
  uint64_t* cas64 = dev.alloc_n<uint64_t>(1);
  unsigned* bits = dev.alloc_n<unsigned>(6);
  bits[5] = ~0u;
  uint16_t* hsum = dev.alloc_n<uint16_t>(1);
  unsigned* exch = dev.alloc_n<unsigned>(1);
  *exch = ~0u;
  int* red = dev.alloc_n<int>(1);
  SIM_EXPECT_OK(mod.launch("contend", {blocks}, {threads},
                           Args().add(icnt).add(fsum).add(dsum).add(umax).add(imin).add(wrap).add(dec).add(cas64)
                               .add(bits).add(hsum).add(exch).add(red)));
  EXPECT_EQ(*icnt, int(n));
  double fs = 0, ds = 0;
  unsigned mx = 0;
  int mn = 1 << 30;
  for (unsigned g = 0; g < n; ++g) {
    fs += g % 8;
    ds += double(g) * 0.5;
    mx = std::max(mx, unsigned(g * 2654435761u >> 8));
    mn = std::min(mn, -int(g) * 3 + 1000);
  }
  EXPECT_EQ(*fsum, float(fs));
  EXPECT_EQ(*dsum, ds);
  EXPECT_EQ(*umax, mx);
  EXPECT_EQ(*imin, mn);
  EXPECT_EQ(*wrap, n % 100);
  EXPECT_EQ(*dec, 5000 - n);
  EXPECT_EQ(*cas64, 3ull * n);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(bits[k], 0x11111111u << k);  // g%4 == k sets bits k, k+4, ...
  EXPECT_EQ(bits[4], 0u);                              // each bit flipped an even number of times
  EXPECT_EQ(bits[5], 0u);
  // 3072 additions of 1.0 in fp16 stall at 2048 (ulp 2 rounds 2048+1 to even).
  EXPECT_EQ(*hsum, 0x6800);
  EXPECT_LT(*exch, n);
  EXPECT_EQ(*red, int(n));
}

TEST(Atomics, SharedHistogram) {
  SIM_NEED_PTX(ptx, "atomics");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 20000;
  std::vector<uint8_t> data(n);
  std::mt19937 rng(1);
  for (auto& d : data) d = uint8_t(rng());
  unsigned* hist = dev.alloc_n<unsigned>(64);
  SIM_EXPECT_OK(mod.launch("shared_histogram", {7}, {96}, Args().add(dev.upload(data)).add(n).add(hist)));
  std::vector<unsigned> ref(64, 0);
  for (uint8_t d : data) ref[d % 64]++;
  for (int i = 0; i < 64; ++i) EXPECT_EQ(hist[i], ref[i]) << i;
}

TEST(Atomics, LastBlockReduction) {
  SIM_NEED_PTX(ptx, "atomics");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int blocks = 40;
  std::vector<int> in(blocks * 128);
  long long sum = 0;
  for (size_t i = 0; i < in.size(); ++i) sum += in[i] = int(i % 97) - 30;
  int* partial = dev.alloc_n<int>(blocks);
  int* total = dev.alloc_n<int>(1);
  int* din = dev.upload(in);
  for (int rep = 0; rep < 3; ++rep) {
    *total = 0;
    SIM_EXPECT_OK(mod.launch("last_block_sum", {blocks}, {128}, Args().add(din).add(partial).add(total)));
    EXPECT_EQ(*total, sum);
  }
}

TEST(Atomics, ChainedScanLookBack) {
  SIM_NEED_PTX(ptx, "atomics");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int blocks = 64;
  std::vector<int> in(blocks * 128);
  for (size_t i = 0; i < in.size(); ++i) in[i] = int(i % 13) - 4;
  int* out = dev.alloc_n<int>(in.size());
  unsigned* status = dev.alloc_n<unsigned>(2 * blocks);
  SIM_EXPECT_OK(mod.launch("chained_scan", {blocks}, {128}, Args().add(static_cast<const int*>(dev.upload(in))).add(out).add(status)));
  int acc = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    acc += in[i];
    ASSERT_EQ(out[i], acc) << i;
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
