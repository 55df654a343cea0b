// Packed 16-bit integer arithmetic, SIMD video instructions (vabsdiff4 and
// friends, which CUDA's __v* intrinsics use) and fns.
#include <algorithm>

#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

template <int OP, bool S, bool SAT>
inline int32_t elem16(int32_t a, int32_t b) {
  int32_t r;
  switch (OP) {
    case 0: r = a + b; break;
    case 1: r = a - b; break;
    case 2: r = std::min(a, b); break;
    default: r = std::max(a, b); break;
  }
  if (SAT) {
    // .sat for add/sub, .relu for min/max.
    if (OP <= 1) r = S ? std::clamp(r, -32768, 32767) : std::clamp(r, 0, 65535);
    else r = std::max(r, 0);
  }
  return r;
}

// o = {d, a, b}; OP 0 add, 1 sub, 2 min, 3 max.
template <int OP, bool S, bool SAT>
int h_x2(Ctx& c, const Inst& in, uint32_t m) {
  return map2<uint32_t, uint32_t, uint32_t>(c, in, m, [](uint32_t a, uint32_t b) {
    uint32_t r = 0;
    for (int k = 0; k < 2; ++k) {
      int32_t x = S ? int32_t(int16_t(a >> (16 * k))) : int32_t((a >> (16 * k)) & 0xffff);
      int32_t y = S ? int32_t(int16_t(b >> (16 * k))) : int32_t((b >> (16 * k)) & 0xffff);
      r |= (uint32_t(elem16<OP, S, SAT>(x, y)) & 0xffff) << (16 * k);
    }
    return r;
  });
}

// SIMD video: o = {d, a, b, c}; aux = op (0 add,1 sub,2 absdiff,3 min,4 max,5 avrg)
// | secondary << 4 (0 none, 1 add, 2 min, 3 max) | asigned << 8 | bsigned << 9
// | dsigned << 10 | sat << 11 | lanes(2 or 4) << 12.
int h_video(Ctx& c, const Inst& in, uint32_t m) {
  const uint32_t aux = in.aux;
  const int op = aux & 15, sec = (aux >> 4) & 15, lanes = int(aux >> 12);
  const bool as = aux & 0x100, bs = aux & 0x200, ds = aux & 0x400, sat = aux & 0x800;
  const int bits = 32 / lanes;
  return map3<uint32_t, uint32_t, uint32_t, uint32_t>(c, in, m, [=](uint32_t a, uint32_t b, uint32_t cc) {
    const uint32_t emask = bits == 8 ? 0xffu : 0xffffu;
    auto ext = [&](uint32_t v, int k, bool s) -> int64_t {
      uint32_t e = (v >> (bits * k)) & emask;
      if (s && (e >> (bits - 1))) return int64_t(e) - (int64_t(1) << bits);
      return int64_t(e);
    };
    int64_t sum = 0;
    uint32_t r = 0;
    for (int k = 0; k < lanes; ++k) {
      int64_t x = ext(a, k, as), y = ext(b, k, bs), t;
      switch (op) {
        case 0: t = x + y; break;
        case 1: t = x - y; break;
        case 2: t = x > y ? x - y : y - x; break;
        case 3: t = std::min(x, y); break;
        case 4: t = std::max(x, y); break;
        default: t = (x + y + 1) >> 1; break;
      }
      if (sat) {
        int64_t lo = ds ? -(int64_t(1) << (bits - 1)) : 0;
        int64_t hi = ds ? (int64_t(1) << (bits - 1)) - 1 : (int64_t(1) << bits) - 1;
        t = std::clamp(t, lo, hi);
      }
      if (sec == 1) {
        sum += t;
        continue;
      }
      if (sec == 2 || sec == 3) {
        int64_t z = ext(cc, k, ds);
        t = sec == 2 ? std::min(t, z) : std::max(t, z);
      }
      r |= (uint32_t(t) & emask) << (bits * k);
    }
    if (sec == 1) return uint32_t(int64_t(int32_t(cc)) + sum);
    return r;
  });
}

int h_fns(Ctx& c, const Inst& in, uint32_t m) {
  return map3<uint32_t, uint32_t, uint32_t, int32_t>(c, in, m, [](uint32_t mask, uint32_t base, int32_t off) {
    if (base > 31) return 0xffffffffu;
    if (off == 0) return ((mask >> base) & 1) ? base : 0xffffffffu;
    int pos = int(base), inc = off > 0 ? 1 : -1;
    int64_t count = (off > 0 ? int64_t(off) : -int64_t(off)) - 1;
    for (; pos >= 0 && pos < 32; pos += inc) {
      if ((mask >> pos) & 1) {
        if (count == 0) return uint32_t(pos);
        --count;
      }
    }
    return 0xffffffffu;
  });
}

}  // namespace

OpFn sel_x2(int op, bool is_signed, bool sat_or_relu) {
#define X(OP)                                                                           \
  if (op == OP)                                                                         \
    return is_signed ? (sat_or_relu ? &h_x2<OP, true, true> : &h_x2<OP, true, false>)  \
                     : (sat_or_relu ? &h_x2<OP, false, true> : &h_x2<OP, false, false>);
  X(0) X(1) X(2) X(3)
#undef X
  return nullptr;
}

OpFn sel_video() { return &h_video; }
OpFn sel_fns() { return &h_fns; }

}  // namespace simgpu::ptx
