// Unit tests of driver internals that have no entry point of their own:
// size parsing, the first-fit VA allocator, the LZ4 block decoder and the
// fatbin reader.  The sources are compiled in here (their symbols are hidden
// in libsimgpu.so, so nothing clashes).
#include "driver/config.cpp"
#include "driver/fatbin.cpp"
#include "driver/vaspace.cpp"

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <fstream>
#include <sstream>


namespace simgpu {
namespace {

TEST(Config, ParseSize) {
  uint64_t v;
  ASSERT_TRUE(parse_size("80G", v));
  EXPECT_EQ(v, 80ULL << 30);
  ASSERT_TRUE(parse_size("512m", v));
  EXPECT_EQ(v, 512ULL << 20);
  ASSERT_TRUE(parse_size("4KiB", v));
  EXPECT_EQ(v, 4096u);
  ASSERT_TRUE(parse_size(" 1048576 ", v));
  EXPECT_EQ(v, 1048576u);
  EXPECT_FALSE(parse_size("", v));
  EXPECT_FALSE(parse_size("G", v));
  EXPECT_FALSE(parse_size("12Q", v));
  EXPECT_FALSE(parse_size("-1G", v));
  EXPECT_FALSE(parse_size("99999999999999999999G", v));
  EXPECT_FALSE(parse_size("17179869184G", v));  // overflows 64 bits once shifted
}

TEST(VaAllocator, FirstFitAlignmentAndCoalescing) {
  VaAllocator a;
  a.init(0x10000, 0x10000);
  uint64_t x = a.alloc(0x100, 0x1000);
  EXPECT_EQ(x, 0x10000u);
  uint64_t y = a.alloc(0x100, 0x1000);
  EXPECT_EQ(y, 0x11000u);  // aligned past x
  EXPECT_FALSE(a.alloc_at(0x11000, 0x10));  // taken
  EXPECT_TRUE(a.alloc_at(0x12000, 0x1000));
  EXPECT_EQ(a.alloc(0x20000, 0x1000), 0u);  // too big
  a.release(x, 0x100);
  a.release(y, 0x100);
  a.release(0x12000, 0x1000);
  // Everything coalesced back: the whole range is one free block again.
  EXPECT_TRUE(a.alloc_at(0x10000, 0x10000));
}

TEST(VaAllocator, ExactPlacement) {
  VaAllocator a;
  a.init(0, 1 << 20);
  EXPECT_TRUE(a.alloc_at(4096, 8192));
  EXPECT_FALSE(a.alloc_at(8192, 4096));  // overlaps
  EXPECT_FALSE(a.alloc_at((1 << 20) - 4096, 8192));  // runs past the end
  EXPECT_TRUE(a.alloc_at(12288, 4096));
}

TEST(Reserve, HonoursAFreeAddressAndFallsBack) {
  const uint64_t want = 0x3F00'0000'0000ULL, size = 1ULL << 30;
  uint64_t got = reserve_va(want, size, 1 << 21);
  ASSERT_EQ(got, want);
  // Taken now: a second request must land elsewhere, aligned.
  uint64_t other = reserve_va(want, size, 1 << 21);
  ASSERT_NE(other, 0u);
  EXPECT_NE(other, want);
  EXPECT_EQ(other % (1 << 21), 0u);
  // commit / decommit: memory appears zeroed and can be dropped again.
  ASSERT_TRUE(commit(got, 1 << 21));
  auto* p = reinterpret_cast<volatile int*>(got);
  EXPECT_EQ(p[100], 0);
  p[100] = 5;
  ASSERT_TRUE(decommit(got, 1 << 21));
  ASSERT_TRUE(commit(got, 1 << 21));
  EXPECT_EQ(p[100], 0);
  unreserve_va(got, size);
  unreserve_va(other, size);
}

TEST(Lz4, DecodesLiteralsMatchesAndOverlaps) {
  // "abcabcabcabcX": literals "abc", match offset 3 length 9 (overlapping), literal "X".
  const uint8_t block[] = {0x35, 'a', 'b', 'c', 0x03, 0x00, 0x10, 'X'};
  uint8_t out[13];
  ASSERT_TRUE(lz4_block_decode(block, sizeof block, out, sizeof out));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), sizeof out), "abcabcabcabcX");
  // Wrong size, offset beyond the output, truncated input: all refused, no overrun.
  uint8_t small[12];
  EXPECT_FALSE(lz4_block_decode(block, sizeof block, small, sizeof small));
  const uint8_t bad_offset[] = {0x35, 'a', 'b', 'c', 0x09, 0x00, 0x10, 'X'};
  EXPECT_FALSE(lz4_block_decode(bad_offset, sizeof bad_offset, out, sizeof out));
  EXPECT_FALSE(lz4_block_decode(block, 5, out, sizeof out));
}

// The repository root, from this file's path (CMake compiles it by absolute path).
std::string source_dir() {
  std::string f = __FILE__;
  return f.substr(0, f.rfind("/csrc/simgpu/tests/"));
}

std::string fixture(const char* name) {
  std::ifstream f(source_dir() + "/tests/programs/data/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(Fatbin, ExtractsPtxFromEveryCompressionMode) {
  std::string reference;
  for (const char* name : {"ptx90_75_plain.fatbin", "ptx90_lz4.fatbin", "ptx90_zstd.fatbin"}) {
    std::string image = fixture(name);
    ASSERT_FALSE(image.empty()) << name;
    std::string ptx, log;
    ASSERT_EQ(extract_ptx(image.data(), image.size(), ptx, log), CUDA_SUCCESS) << name << ": " << log;
    EXPECT_NE(ptx.find(".target sm_90"), std::string::npos) << name;
    EXPECT_NE(ptx.find("triple"), std::string::npos) << name;
    if (reference.empty())
      reference = ptx;
    else
      EXPECT_EQ(ptx, reference) << name << " decodes to the same PTX";
  }
}

TEST(Fatbin, RefusesMachineCodeAndForeignArchitectures) {
  std::string ptx, log;
  std::string sass = fixture("sass_only.fatbin");
  EXPECT_EQ(extract_ptx(sass.data(), sass.size(), ptx, log), CUDA_ERROR_NO_BINARY_FOR_GPU);
  EXPECT_NE(log.find("sm_90"), std::string::npos);
  std::string future = fixture("ptx100_only.fatbin");
  EXPECT_EQ(extract_ptx(future.data(), future.size(), ptx, log), CUDA_ERROR_NO_BINARY_FOR_GPU);
  std::string cubin = fixture("sm90.cubin");
  EXPECT_EQ(extract_ptx(cubin.data(), cubin.size(), ptx, log), CUDA_ERROR_NO_BINARY_FOR_GPU);
  EXPECT_NE(log.find("ELF"), std::string::npos);
}

TEST(Fatbin, CorruptContainersNeverReadOutOfBounds) {
  std::string image = fixture("ptx90_lz4.fatbin");
  std::string ptx, log;
  // Every truncation and a sweep of single-byte corruptions: refused or decoded, never a crash.
  for (size_t n = 1; n < image.size(); n += 7) {
    std::string cut = image.substr(0, n);
    extract_ptx(cut.data(), cut.size(), ptx, log);
  }
  for (size_t i = 0; i < image.size(); ++i) {
    std::string bad = image;
    bad[i] = char(bad[i] ^ 0xA5);
    extract_ptx(bad.data(), bad.size(), ptx, log);
  }
  SUCCEED();
}

TEST(Fatbin, PlainTextAndGarbage) {
  std::string ptx, log;
  const char text[] = ".version 8.0\n.target sm_90\n";
  EXPECT_EQ(extract_ptx(text, 0, ptx, log), CUDA_SUCCESS);
  EXPECT_EQ(ptx, text);
  EXPECT_EQ(extract_ptx(text, 10, ptx, log), CUDA_SUCCESS);  // not NUL-terminated: sized
  EXPECT_EQ(ptx, std::string(text, 10));
  const char junk[] = {1, 2, 3, 4, 0};
  EXPECT_EQ(extract_ptx(junk, 0, ptx, log), CUDA_ERROR_INVALID_IMAGE);
  EXPECT_EQ(extract_ptx("", 0, ptx, log), CUDA_ERROR_INVALID_IMAGE);
}

}  // namespace
}  // namespace simgpu
