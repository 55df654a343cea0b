// Integer instructions against host references written from the PTX ISA.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstdint>
#include <random>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

uint32_t msb(uint64_t v) { return 63 - uint32_t(__builtin_clzll(v)); }

uint32_t bfe32(uint32_t a, uint32_t bp, uint32_t bl, bool s) {
  uint32_t pos = bp & 0xff, len = bl & 0xff;
  bool sbit = s && len ? (a >> std::min(pos + len - 1, 31u)) & 1 : false;
  uint32_t r = 0;
  for (uint32_t i = 0; i < 32; ++i) {
    bool bit = (i < len && pos + i <= 31) ? (a >> (pos + i)) & 1 : sbit;
    r |= uint32_t(bit) << i;
  }
  return r;
}

uint32_t prmt_ref(uint32_t a, uint32_t b, uint32_t c, int mode) {
  uint8_t x[8];
  for (int i = 0; i < 4; ++i) x[i] = uint8_t(a >> (8 * i)), x[4 + i] = uint8_t(b >> (8 * i));
  static const int tab[6][4][4] = {
      // per mode, per selector: bytes for d.b0..d.b3
      {{0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}},  // f4e
      {{0, 7, 6, 5}, {1, 0, 7, 6}, {2, 1, 0, 7}, {3, 2, 1, 0}},  // b4e
      {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}},  // rc8
      {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}},  // ecl
      {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}},  // ecr
      {{0, 1, 0, 1}, {2, 3, 2, 3}, {0, 1, 0, 1}, {2, 3, 2, 3}},  // rc16
  };
  uint32_t r = 0;
  if (mode == 0) {
    for (int k = 0; k < 4; ++k) {
      uint32_t s = (c >> (4 * k)) & 0xf;
      uint8_t v = x[s & 7];
      if (s & 8) v = (v & 0x80) ? 0xff : 0;
      r |= uint32_t(v) << (8 * k);
    }
    return r;
  }
  uint32_t sel = mode == 6 ? (c & 1) : (c & 3);
  for (int k = 0; k < 4; ++k) r |= uint32_t(x[tab[mode - 1][sel][k]]) << (8 * k);
  return r;
}

uint32_t sat32(int64_t v) { return uint32_t(int32_t(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX))); }
int64_t s24(uint32_t v) { return int64_t(int32_t(v << 8) >> 8); }

std::vector<uint32_t> ref32(uint32_t a, uint32_t b, uint32_t c) {
  int32_t sa = int32_t(a), sb = int32_t(b);
  std::vector<uint32_t> o;
  o.push_back(a + b);
  o.push_back(a - b);
  o.push_back(a * b);
  o.push_back(uint32_t((uint64_t(a) * b) >> 32));
  o.push_back(uint32_t(uint64_t(int64_t(sa) * sb) >> 32));
  o.push_back(b ? a / b : 0);
  o.push_back(b ? a % b : 0);
  bool sdiv = sb != 0 && !(sa == INT32_MIN && sb == -1);
  o.push_back(sdiv ? uint32_t(sa / sb) : 0);
  o.push_back(sdiv ? uint32_t(sa % sb) : 0);
  o.push_back(std::min(a, b));
  o.push_back(uint32_t(std::min(sa, sb)));
  o.push_back(uint32_t(std::max(sa, sb)));
  o.push_back(a >> (b & 31));
  o.push_back(uint32_t(sa >> (b & 31)));
  o.push_back(a << (b & 31));
  o.push_back(b >= 32 ? 0 : a << b);
  o.push_back(b >= 32 ? (sa < 0 ? ~0u : 0u) : uint32_t(sa >> b));
  o.push_back(uint32_t(__builtin_popcount(a)));
  o.push_back(a ? uint32_t(__builtin_clz(a)) : 32);
  uint32_t rv = 0;
  for (int i = 0; i < 32; ++i) rv |= ((a >> i) & 1) << (31 - i);
  o.push_back(rv);
  o.push_back(a ? msb(a) : ~0u);
  uint32_t na = sa < 0 ? ~a : a;
  o.push_back(na ? msb(na) : ~0u);
  o.push_back(a ? 31 - msb(a) : ~0u);
  o.push_back(bfe32(a, b, c, false));
  o.push_back(bfe32(a, b, c, true));
  {
    uint32_t pos = c & 0xff, len = (c >> 8) & 0xff, r = b;
    for (uint32_t i = 0; i < len && pos + i < 32; ++i) r = (r & ~(1u << (pos + i))) | (((a >> i) & 1) << (pos + i));
    o.push_back(r);
  }
  o.push_back(prmt_ref(a, b, c & 0x7777, 0));  // __byte_perm ignores the sign-replicate bit
  for (int mode = 0; mode <= 6; ++mode) o.push_back(prmt_ref(a, b, c, mode));
  uint64_t ba = uint64_t(b) << 32 | a;
  uint32_t nw = c & 31, nc = std::min(c, 32u);
  o.push_back(uint32_t((ba << nw) >> 32));
  o.push_back(nc == 32 ? a : uint32_t((ba << nc) >> 32));
  o.push_back(uint32_t(ba >> nw));
  o.push_back(nc == 32 ? b : uint32_t(ba >> nc));
  o.push_back(a ^ b ^ c);
  o.push_back((a & b) | (a & c) | (b & c));
  o.push_back(c + uint32_t(sa > sb ? int64_t(sa) - sb : int64_t(sb) - sa));
  o.push_back(c + (a > b ? a - b : b - a));
  o.push_back(uint32_t(s24(a) * s24(b)));
  o.push_back((a & 0xffffff) * (b & 0xffffff));
  o.push_back(uint32_t(uint64_t(s24(a) * s24(b)) >> 16) + c);
  {
    int32_t acc = int32_t(c);
    for (int k = 0; k < 4; ++k) acc += int32_t(int8_t(a >> (8 * k))) * int32_t(int8_t(b >> (8 * k)));
    o.push_back(uint32_t(acc));
    uint32_t uacc = c;
    for (int k = 0; k < 4; ++k) uacc += ((a >> (8 * k)) & 0xff) * ((b >> (8 * k)) & 0xff);
    o.push_back(uacc);
    uacc = c;
    for (int k = 0; k < 2; ++k) uacc += ((a >> (16 * k)) & 0xffff) * ((b >> (8 * k)) & 0xff);
    o.push_back(uacc);
    acc = int32_t(c);
    for (int k = 0; k < 2; ++k) acc += int32_t(int16_t(a >> (16 * k))) * int32_t(int8_t(b >> (8 * (k + 2))));
    o.push_back(uint32_t(acc));
  }
  o.push_back(uint32_t((uint64_t(a) * b) >> 32) + c);
  o.push_back(sat32(int64_t(int32_t(uint32_t(uint64_t(int64_t(sa) * sb) >> 32))) + int32_t(c)));
  o.push_back(sat32(int64_t(sa) + sb));
  o.push_back(sat32(int64_t(sa) - sb));
  {
    uint64_t s = uint64_t(a) + b;
    o.push_back(uint32_t(s));
    o.push_back(c + (a ^ b) + uint32_t(s >> 32));
    uint32_t borrow = a < b;
    o.push_back(a - b);
    o.push_back(c - (a ^ b) - borrow);
  }
  o.push_back((a & 3) == 0 ? 1 : 0);
  o.push_back(~a);
  o.push_back(0u - a);
  o.push_back(sa < 0 ? 0u - a : a);
  {
    uint32_t n = b & 31;
    o.push_back(n == 0 ? 0 : uint32_t(int32_t(a << (32 - n)) >> (32 - n)));
    uint32_t nc2 = std::min(b, 32u);
    o.push_back(nc2 == 0 ? 0 : nc2 == 32 ? a : (a & ((1u << nc2) - 1)));
    uint32_t p = std::min(a & 63, 32u), l = std::min(b & 63, 32u);
    uint64_t mask = l >= 64 ? ~0ull : ((1ull << l) - 1);
    o.push_back(uint32_t((mask << p) & 0xffffffffu));
  }
  o.push_back(uint32_t(std::max(0, std::max(sa, sb))));
  o.push_back(uint32_t(o.size()));
  return o;
}

std::vector<uint64_t> ref64(uint64_t a, uint64_t b) {
  int64_t sa = int64_t(a), sb = int64_t(b);
  std::vector<uint64_t> o;
  o.push_back(a + b);
  o.push_back(a * b);
  o.push_back(uint64_t((unsigned __int128)a * b >> 64));
  o.push_back(uint64_t((__int128)sa * sb >> 64));
  o.push_back(b ? a / b : 0);
  o.push_back(b ? a % b : 0);
  bool sdiv = sb != 0 && !(sa == INT64_MIN && sb == -1);
  o.push_back(sdiv ? uint64_t(sa / sb) : 0);
  o.push_back(sdiv ? uint64_t(sa % sb) : 0);
  o.push_back(a >> (b & 63));
  o.push_back(uint64_t(sa >> (b & 63)));
  o.push_back(uint64_t(__builtin_popcountll(a)));
  o.push_back(a ? uint64_t(__builtin_clzll(a)) : 64);
  uint64_t rv = 0;
  for (int i = 0; i < 64; ++i) rv |= ((a >> i) & 1) << (63 - i);
  o.push_back(rv);
  o.push_back(uint64_t(uint32_t(a)) * uint32_t(b));
  o.push_back(uint64_t(int64_t(int32_t(a)) * int32_t(b)));
  o.push_back(uint64_t(std::min(sa, sb)));
  o.push_back(std::max(a, b));
  o.push_back(a ? uint64_t(__builtin_ctzll(a) + 1) : 0);
  {
    uint32_t pos = uint32_t(b) & 0xff, len = uint32_t(b >> 8) & 0xff;
    bool sbit = len ? (a >> std::min(pos + len - 1, 63u)) & 1 : false;
    uint64_t r = 0;
    for (uint32_t i = 0; i < 64; ++i) {
      bool bit = (i < len && pos + i <= 63) ? (a >> (pos + i)) & 1 : sbit;
      r |= uint64_t(bit) << i;
    }
    o.push_back(r);
    pos = uint32_t(b >> 16) & 0xff;
    len = uint32_t(b >> 24) & 0xff;
    r = b;
    for (uint32_t i = 0; i < len && pos + i < 64; ++i) r = (r & ~(1ull << (pos + i))) | (((a >> i) & 1) << (pos + i));
    o.push_back(r);
  }
  o.push_back(uint64_t(int64_t(int32_t(a)) * int32_t(b)) + a);
  o.push_back(a ^ (b & (a * 3)));
  o.push_back(uint64_t(int64_t(int32_t(int16_t(a)) * int16_t(b))));
  o.push_back(uint64_t(o.size()));
  return o;
}

TEST(Integer, Ops32) {
  SIM_NEED_PTX(ptx, "int_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<uint32_t> A, B, C;
  const uint32_t edge[] = {0, 1, 2, 31, 32, 33, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 0x00ff00ff, 0x1234};
  for (uint32_t x : edge)
    for (uint32_t y : edge) A.push_back(x), B.push_back(y), C.push_back(x ^ (y * 7 + 0x3210));
  std::mt19937 rng(7);
  while (A.size() < 320) A.push_back(rng()), B.push_back(rng() >> (rng() % 32)), C.push_back(rng());
  int n = int(A.size());
  uint32_t* out = dev.alloc_n<uint32_t>(size_t(n) * 80);
  SIM_EXPECT_OK(mod.launch("int32_ops", {uint32_t((n + 127) / 128)}, {128},
                           Args().add(dev.upload(A)).add(dev.upload(B)).add(dev.upload(C)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    std::vector<uint32_t> r = ref32(A[i], B[i], C[i]);
    ASSERT_EQ(out[i * 80 + r.size() - 1], r.size() - 1) << "result count";
    for (size_t k = 0; k < r.size(); ++k)
      ASSERT_EQ(out[i * 80 + k], r[k]) << "op " << k << " a=" << A[i] << " b=" << B[i] << " c=" << C[i];
  }
}

TEST(Integer, Ops64) {
  SIM_NEED_PTX(ptx, "int_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::vector<uint64_t> A, B;
  const uint64_t edge[] = {0, 1, 63, 64, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, 0xffffffffull, 0x100000000ull};
  for (uint64_t x : edge)
    for (uint64_t y : edge) A.push_back(x), B.push_back(y);
  std::mt19937_64 rng(9);
  while (A.size() < 200) A.push_back(rng()), B.push_back(rng() >> (rng() % 64));
  int n = int(A.size());
  uint64_t* out = dev.alloc_n<uint64_t>(size_t(n) * 24);
  SIM_EXPECT_OK(mod.launch("int64_ops", {uint32_t((n + 63) / 64)}, {64},
                           Args().add(dev.upload(A)).add(dev.upload(B)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    std::vector<uint64_t> r = ref64(A[i], B[i]);
    ASSERT_EQ(out[i * 24 + r.size() - 1], r.size() - 1) << "result count";
    for (size_t k = 0; k < r.size(); ++k) ASSERT_EQ(out[i * 24 + k], r[k]) << "op " << k << " a=" << A[i] << " b=" << B[i];
  }
}

uint32_t lanes(uint32_t a, uint32_t b, int bits, int64_t (*f)(int64_t, int64_t), bool sa) {
  uint32_t r = 0, m = bits == 8 ? 0xff : 0xffff;
  for (int k = 0; k < 32 / bits; ++k) {
    int64_t x = (a >> (bits * k)) & m, y = (b >> (bits * k)) & m;
    if (sa) {
      if (x >> (bits - 1)) x -= int64_t(1) << bits;
      if (y >> (bits - 1)) y -= int64_t(1) << bits;
    }
    r |= (uint32_t(f(x, y)) & m) << (bits * k);
  }
  return r;
}

TEST(Integer, SimdIntrinsicsAndFns) {
  SIM_NEED_PTX(ptx, "int_ops");
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  std::mt19937 rng(17);
  std::vector<uint32_t> A, B;
  const uint32_t edge[] = {0, 0xffffffff, 0x80808080, 0x7f7f7f7f, 0x00ff00ff, 0x8000ffff, 0x12345678};
  for (uint32_t x : edge)
    for (uint32_t y : edge) A.push_back(x), B.push_back(y);
  while (A.size() < 256) A.push_back(rng()), B.push_back(rng());
  int n = int(A.size());
  uint32_t* out = dev.alloc_n<uint32_t>(size_t(n) * 12);
  SIM_EXPECT_OK(mod.launch("simd_ops", {uint32_t((n + 63) / 64)}, {64}, Args().add(dev.upload(A)).add(dev.upload(B)).add(out).add(n)));
  for (int i = 0; i < n; ++i) {
    uint32_t a = A[i], b = B[i];
    const uint32_t* o = out + i * 12;
    auto absd = [](int64_t x, int64_t y) { return x > y ? x - y : y - x; };
    EXPECT_EQ(o[0], lanes(a, b, 8, absd, false));
    EXPECT_EQ(o[1], lanes(a, b, 8, [](int64_t x, int64_t y) { return x + y; }, false));
    EXPECT_EQ(o[2], lanes(a, b, 16, [](int64_t x, int64_t y) { return x - y; }, false));
    EXPECT_EQ(o[3], lanes(a, b, 16, [](int64_t x, int64_t y) { return std::max(x, y); }, true));
    uint32_t sad = 0;
    for (int k = 0; k < 4; ++k) sad += uint32_t(absd(int8_t(a >> (8 * k)), int8_t(b >> (8 * k))));
    EXPECT_EQ(o[4], sad);
    EXPECT_EQ(o[5], lanes(a, b, 16, [](int64_t x, int64_t y) { return std::clamp<int64_t>(x + y, -32768, 32767); }, true));
    EXPECT_EQ(o[6], lanes(a, b, 8, [](int64_t x, int64_t y) { return std::min(x, y); }, false));
    EXPECT_EQ(o[7], lanes(a, b, 8, [](int64_t x, int64_t y) { return (x + y + 1) >> 1; }, false));
    EXPECT_EQ(o[8], lanes(a, b, 8, [](int64_t x, int64_t y) { return x > y ? int64_t(0xff) : int64_t(0); }, false));
    {
      uint32_t base = b & 31;
      int off = int(b >> 27) - 16;
      uint32_t want = 0xffffffff;
      if (off == 0) {
        if ((a >> base) & 1) want = base;
      } else {
        int cnt = std::abs(off) - 1, inc = off > 0 ? 1 : -1;
        for (int pos = int(base); pos >= 0 && pos < 32; pos += inc)
          if ((a >> pos) & 1) {
            if (cnt == 0) { want = uint32_t(pos); break; }
            --cnt;
          }
      }
      EXPECT_EQ(o[9], want) << "fns a=" << a << " base=" << base << " off=" << off;
    }
    EXPECT_EQ(o[10], lanes(a, b, 16, absd, true));
    EXPECT_EQ(o[11], 11u);
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
