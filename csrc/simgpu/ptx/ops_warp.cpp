// Warp-wide exchanges: shfl, vote, match, redux, activemask, elect.
//
// A lane's participants are the executing lanes named by its membermask.
// Lanes of one warp may execute the same instruction with different masks
// (cooperative-groups tiles: each half-warp names itself), so vote, match and
// redux work per group of lanes sharing a mask value.
#include <algorithm>

#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

// Calls f(group, participants) for each set of executing lanes that share
// a membermask value.
template <class F>
inline void by_mask(Ctx& c, uint32_t mask_off, uint32_t m, F f) {
  const uint32_t* mm = R<const uint32_t>(c, mask_off);
  uint32_t left = m;
  while (left) {
    uint32_t mask = mm[__builtin_ctz(left)];
    uint32_t group = 0;
    SIM_FOR_LANES(left, i) group |= uint32_t(mm[i] == mask) << i;
    f(group, mask & m);
    left &= ~group;
  }
}

template <int MODE>
int h_shfl(Ctx& c, const Inst& in, uint32_t m) {
  const uint32_t* a = R<const uint32_t>(c, in.o[2]);
  const uint32_t* b = R<const uint32_t>(c, in.o[3]);
  const uint32_t* cc = R<const uint32_t>(c, in.o[4]);
  alignas(32) uint32_t t[32];
  uint32_t pv = 0;
  for (uint32_t lane = 0; lane < 32; ++lane) {
    uint32_t bval = b[lane] & 0x1f, cval = cc[lane] & 0x1f, seg = (cc[lane] >> 8) & 0x1f;
    uint32_t maxl = (lane & seg) | (cval & ~seg), minl = lane & seg;
    int32_t j;
    bool ok;
    if constexpr (MODE == 0) { j = int32_t(lane) - int32_t(bval); ok = j >= int32_t(maxl); }
    else if constexpr (MODE == 1) { j = int32_t(lane + bval); ok = j <= int32_t(maxl); }
    else if constexpr (MODE == 2) { j = int32_t(lane ^ bval); ok = j <= int32_t(maxl); }
    else { j = int32_t(minl | (bval & ~seg)); ok = j <= int32_t(maxl); }
    if (!ok) j = int32_t(lane);
    t[lane] = a[j & 31];
    pv |= uint32_t(ok) << lane;
  }
  merge(R<uint32_t>(c, in.o[0]), t, m);
  set_pred(c, in.o[1], pv, m);
  return kNext;
}

template <int MODE>
int h_vote(Ctx& c, const Inst& in, uint32_t m) {
  uint32_t a = pred_word(c, in.o[1]) ^ ((in.aux2 & 1) ? ~0u : 0u);
  uint32_t res = 0;
  uint32_t* d = R<uint32_t>(c, in.o[0]);
  by_mask(c, in.o[2], m, [&](uint32_t group, uint32_t part) {
    uint32_t v = a & part;
    if constexpr (MODE == 3) {
      SIM_FOR_LANES(group, i) d[i] = v;
    } else {
      bool r = MODE == 0 ? v == part : MODE == 1 ? v != 0 : (v == 0 || v == part);
      if (r) res |= group;
    }
  });
  if constexpr (MODE != 3) set_pred(c, in.o[0], res, m);
  return kNext;
}

template <bool ALL, class T>
int h_match(Ctx& c, const Inst& in, uint32_t m) {
  const T* a = R<const T>(c, in.o[1]);
  uint32_t* d = R<uint32_t>(c, in.o[0]);
  uint32_t pv = 0;
  uint32_t res[32];
  by_mask(c, in.o[2], m, [&](uint32_t group, uint32_t part) {
    if constexpr (ALL) {
      T v = a[__builtin_ctz(group)];
      bool same = true;
      SIM_FOR_LANES(part, i) same = same && a[i] == v;
      SIM_FOR_LANES(group, i) res[i] = same ? part : 0;
      if (same) pv |= group;
    } else {
      SIM_FOR_LANES(group, i) {
        uint32_t r = 0;
        SIM_FOR_LANES(part, j) r |= uint32_t(a[j] == a[i]) << j;
        res[i] = r;
      }
    }
  });
  SIM_FOR_LANES(m, i) d[i] = res[i];
  if constexpr (ALL) set_pred(c, in.o[3], pv, m);
  return kNext;
}

template <RedOp OP, bool SIGNED>
int h_redux(Ctx& c, const Inst& in, uint32_t m) {
  const uint32_t* a = R<const uint32_t>(c, in.o[1]);
  uint32_t res[32];
  by_mask(c, in.o[2], m, [&](uint32_t group, uint32_t part) {
    if (!part) part = group;
    uint32_t acc = a[__builtin_ctz(part)];
    uint32_t rest = part & (part - 1);
    SIM_FOR_LANES(rest, i) {
      uint32_t v = a[i];
      switch (OP) {
        case RedOp::Add: acc += v; break;
        case RedOp::And: acc &= v; break;
        case RedOp::Or: acc |= v; break;
        case RedOp::Xor: acc ^= v; break;
        case RedOp::Min: acc = SIGNED ? uint32_t(std::min(int32_t(acc), int32_t(v))) : std::min(acc, v); break;
        case RedOp::Max: acc = SIGNED ? uint32_t(std::max(int32_t(acc), int32_t(v))) : std::max(acc, v); break;
      }
    }
    SIM_FOR_LANES(group, i) res[i] = acc;
  });
  uint32_t* d = R<uint32_t>(c, in.o[0]);
  SIM_FOR_LANES(m, i) d[i] = res[i];
  return kNext;
}

int h_activemask(Ctx& c, const Inst& in, uint32_t m) {
  uint32_t* d = R<uint32_t>(c, in.o[0]);
  uint32_t a = c.w->active;
  SIM_FOR_LANES(m, i) d[i] = a;
  return kNext;
}

int h_elect(Ctx& c, const Inst& in, uint32_t m) {
  const uint32_t* mm = R<const uint32_t>(c, in.o[2]);
  uint32_t part = m & (m ? mm[__builtin_ctz(m)] : 0);
  uint32_t leader = part ? uint32_t(__builtin_ctz(part)) : 0;
  uint32_t* d = R<uint32_t>(c, in.o[0]);
  SIM_FOR_LANES(m, i) d[i] = leader;
  set_pred(c, in.o[1], part ? (1u << leader) : 0u, m);
  return kNext;
}

}  // namespace

OpFn sel_shfl(int mode) {
  switch (mode) {
    case 0: return &h_shfl<0>;
    case 1: return &h_shfl<1>;
    case 2: return &h_shfl<2>;
    case 3: return &h_shfl<3>;
  }
  return nullptr;
}

OpFn sel_vote(int mode) {
  switch (mode) {
    case 0: return &h_vote<0>;
    case 1: return &h_vote<1>;
    case 2: return &h_vote<2>;
    case 3: return &h_vote<3>;
  }
  return nullptr;
}

OpFn sel_match(bool all, unsigned size) {
  if (size == 4) return all ? &h_match<true, uint32_t> : &h_match<false, uint32_t>;
  if (size == 8) return all ? &h_match<true, uint64_t> : &h_match<false, uint64_t>;
  return nullptr;
}

OpFn sel_redux(RedOp op, bool s) {
  switch (op) {
    case RedOp::Add: return &h_redux<RedOp::Add, false>;
    case RedOp::And: return &h_redux<RedOp::And, false>;
    case RedOp::Or: return &h_redux<RedOp::Or, false>;
    case RedOp::Xor: return &h_redux<RedOp::Xor, false>;
    case RedOp::Min: return s ? &h_redux<RedOp::Min, true> : &h_redux<RedOp::Min, false>;
    case RedOp::Max: return s ? &h_redux<RedOp::Max, true> : &h_redux<RedOp::Max, false>;
  }
  return nullptr;
}

OpFn sel_activemask() { return &h_activemask; }
OpFn sel_elect() { return &h_elect; }

}  // namespace simgpu::ptx
