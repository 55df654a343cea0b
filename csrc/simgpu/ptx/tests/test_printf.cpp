// vprintf output (host printf rules, flushed when the launch ends) and
// __assertfail (message on stderr, Fault::Assert).
#include <cstdio>
#include <string>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

TEST(Printf, FormatsLikeHostPrintf) {
  SIM_NEED_PTX(ptx, "printf");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const char msg[] = "device string";
  char* s = static_cast<char*>(dev.alloc(sizeof msg));
  std::memcpy(s, msg, sizeof msg);
  testing::internal::CaptureStdout();
  Outcome o = mod.launch("printer", {1}, {3}, Args().add(10).add(1.75).add(static_cast<const char*>(s)));
  std::string got = testing::internal::GetCapturedStdout();
  ASSERT_EQ(o.fault, Fault::None) << o.detail;
  std::string want;
  char buf[256];
  for (int t = 0; t < 3; ++t) {
    std::snprintf(buf, sizeof buf, "t=%d u=%u x=%#x f=%.3f e=%e g=%g\n", t + 10, 4000000000u + t, 255 * t, 1.75 * t, 1.75,
                  1.75 / 3);
    want += buf;
  }
  std::snprintf(buf, sizeof buf, "str=%s c=%c ll=%lld w=[%5d] p=[%-4d] star=[%*d] pct=100%%\n", msg, 'B',
                -1234567890123ll, 1, 1, 3, 7);
  want += buf;
  EXPECT_EQ(got, want);
}

TEST(Printf, AssertFails) {
  SIM_NEED_PTX(ptx, "printf");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<int> v = {0, 1, 2, 3, 4, 5, 6, 7};
  int* dv = dev.upload(v);
  testing::internal::CaptureStderr();
  Outcome o = mod.launch("asserter", {1}, {8}, Args().add(dv));
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.fault, Fault::Assert) << o.detail;
  EXPECT_NE(err.find("block: [0,0,0], thread: [3,0,0] Assertion `v[t] != 3` failed."), std::string::npos) << err;
  EXPECT_NE(err.find("printf.cu"), std::string::npos) << err;
  EXPECT_NE(o.detail.find("v[t] != 3"), std::string::npos) << o.detail;
  v[3] = 30;
  std::memcpy(dv, v.data(), v.size() * sizeof(int));
  SIM_EXPECT_OK(mod.launch("asserter", {1}, {8}, Args().add(dv)));
}

}  // namespace
}  // namespace simgpu::ptx::test
