// State spaces, parameters, module variables, generic addressing and faults.
#include <cstdint>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

struct Params {
  int a;
  double b;
  char c[5];
  short s;
};

TEST(Memory, SpacesParamsGlobals) {
  SIM_NEED_PTX(ptx, "memory");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const KernelInfo& k = mod.program().kernels()[size_t(mod.program().find_kernel("spaces"))];
  ASSERT_EQ(k.params.size(), 3u);
  EXPECT_EQ(k.params[0].size, sizeof(Params));
  EXPECT_EQ(k.params[0].align, 8u);
  EXPECT_EQ(k.params[1].offset, 24u);
  EXPECT_EQ(k.params[2].offset, 32u);
  EXPECT_GE(k.static_shared_bytes, 64u * 4 + 32 * 4);
  EXPECT_GE(k.local_bytes, 64u);
  Params p{7, 3.25, {1, 2, 3, 4, 5}, -3};
  const int nt = 64;
  int* out = dev.alloc_n<int>(nt * 16);
  SIM_EXPECT_OK(mod.launch("spaces", {1}, {nt}, Args().add(p).add(out).add(3), nt * 4));
  const int gtable[6] = {3, 1, 4, 1, 5, 9};
  const float ctable[4] = {0.5f, 1.5f, 2.5f, 3.5f};
  const long long cbig = 0x123456789abcdefll;
  for (int t = 0; t < nt; ++t) {
    const int* o = out + t * 16;
    EXPECT_EQ(o[0], (63 - t) * 3 + ((t + 1) % nt) * 5 + 7) << t;
    EXPECT_EQ(o[1], ((t * 7 + 3) % 16) * t - 3) << t;
    EXPECT_EQ(o[2], 32 + p.c[t % 5]) << t;
    EXPECT_EQ(o[3], gtable[t % 6] + 4) << t;
    EXPECT_EQ(o[4], int(ctable[t % 4] * 2.0f) + int(cbig >> (t % 40))) << t;
    EXPECT_EQ(o[5], (t & 1) ? t * 3 : gtable[t % 6]) << t;
    EXPECT_EQ(o[6], (t % 16) * t - 3) << t;
    // where(): global=1 shared=2 local=4 const=8 for shared, global, local,
    // const pointers.  Constant data lives in device memory, so a generic
    // pointer to it is in the global window too.
    EXPECT_EQ(o[7], 2 | 1 << 4 | 4 << 8 | 9 << 12) << t;
    EXPECT_EQ(o[8], (t + 3) % 32 + 32) << t;  // the last writers are threads 32..63
    EXPECT_EQ(o[9], 10) << t;
  }
  // Module variables as the driver sees them.
  int* gt = static_cast<int*>(mod.global("gtable"));
  ASSERT_NE(gt, nullptr);
  EXPECT_EQ(gt[2], 4);
  uint64_t gp;
  std::memcpy(&gp, mod.global("gptr"), 8);
  EXPECT_EQ(gp, reinterpret_cast<uint64_t>(gt) + 8);
}

TEST(Memory, VectorsAndReadOnlyLoads) {
  SIM_NEED_PTX(ptx, "memory");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 96;
  std::vector<float> in(4 * n);
  std::vector<int> pairs(2 * n), ro(n);
  for (int i = 0; i < 4 * n; ++i) in[i] = float(i) * 0.25f;
  for (int i = 0; i < 2 * n; ++i) pairs[i] = i * 3 - 50;
  for (int i = 0; i < n; ++i) ro[i] = i * i;
  float* dout = dev.alloc_n<float>(4 * n);
  int* pout = dev.alloc_n<int>(2 * n);
  int* rout = dev.alloc_n<int>(n);
  SIM_EXPECT_OK(mod.launch("vectors", {1}, {n},
                           Args().add(dev.upload(in)).add(dout).add(dev.upload(pairs)).add(pout).add(dev.upload(ro)).add(rout)));
  for (int t = 0; t < n; ++t) {
    for (int c = 0; c < 4; ++c) EXPECT_EQ(dout[4 * t + c], in[4 * t + 3 - c]);
    EXPECT_EQ(pout[2 * t], pairs[2 * t] + pairs[2 * t + 1]);
    EXPECT_EQ(pout[2 * t + 1], pairs[2 * t] - pairs[2 * t + 1]);
    EXPECT_EQ(rout[t], 2 * ro[t]);
  }
}

TEST(Memory, GridConstantParamByAddress) {
  SIM_NEED_PTX(ptx, "memory");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  struct Big { int v[8]; } b{{10, 20, 30, 40, 50, 60, 70, 80}};
  int* out = dev.alloc_n<int>(32);
  SIM_EXPECT_OK(mod.launch("grid_const", {1}, {32}, Args().add(b).add(out)));
  for (int t = 0; t < 32; ++t) EXPECT_EQ(out[t], b.v[t % 8] + 80);
}

struct FaultCase {
  int which;
  Fault fault;
  bool has_address;
};

TEST(Memory, FaultsAreReportedBeforeTheAccess) {
  SIM_NEED_PTX(ptx, "memory");
  const FaultCase cases[] = {
      {0, Fault::IllegalAddress, true},     {1, Fault::MisalignedAddress, true}, {2, Fault::IllegalAddress, true},
      {3, Fault::IllegalAddress, true},     {4, Fault::IllegalAddress, true},    {5, Fault::IllegalAddress, true},
      {6, Fault::MisalignedAddress, true},
  };
  for (const FaultCase& fc : cases) {
    Device dev;
    SIM_LOAD(mod, dev, ptx);
    int* buf = dev.alloc_n<int>(64);
    for (int i = 0; i < 64; ++i) buf[i] = 1000 + i;
    Outcome o = mod.launch("faults", {2}, {32}, Args().add(buf).add(fc.which));
    EXPECT_EQ(o.fault, fc.fault) << "case " << fc.which << ": " << o.detail;
    EXPECT_NE(o.detail.find("kernel faults"), std::string::npos) << o.detail;
    EXPECT_NE(o.detail.find("thread (5,0,0)"), std::string::npos) << o.detail;
    EXPECT_NE(o.detail.find("line "), std::string::npos) << o.detail;
    if (fc.which == 0) EXPECT_EQ(o.address, reinterpret_cast<uint64_t>(buf + (1 << 20)));
    if (fc.which == 4) EXPECT_EQ(o.address, reinterpret_cast<uint64_t>(buf - 1));
    // Nothing was written.
    for (int i = 0; i < 64; ++i) ASSERT_EQ(buf[i], 1000 + i) << "case " << fc.which;
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
