// bulk_copy takes its own loop for some sizes and alignments: it must copy
// exactly what memcpy would, at every skew and length around its thresholds.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "bulk_copy.h"

TEST(BulkCopy, SameBytesAsMemcpyAtEverySkew) {
  const size_t sizes[] = {0, 1, 63, 2047, 2048, 2049, 4096 + 17, 65536 + 5, (4u << 20) - 1, 4u << 20};
  std::vector<uint8_t> src((4u << 20) + 128), dst(src.size() + 128), want(dst.size());
  for (size_t i = 0; i < src.size(); ++i) src[i] = uint8_t(i * 131 + 7);
  for (size_t n : sizes) {
    for (unsigned so = 0; so < 64; so += (n > 65536 ? 13 : 1)) {
      for (unsigned d = 0; d < 64; d += (n > 65536 ? 11 : 3)) {
        std::memset(dst.data(), 0xEE, dst.size());
        std::memset(want.data(), 0xEE, want.size());
        sing::bulk_copy(dst.data() + d, src.data() + so, n);
        std::memcpy(want.data() + d, src.data() + so, n);
        ASSERT_EQ(0, std::memcmp(dst.data(), want.data(), dst.size())) << "n=" << n << " src+" << so << " dst+" << d;
      }
    }
  }
}
