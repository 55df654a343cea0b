// cp.async, cp.async.bulk and mbarrier.
//
// Asynchronous copies complete immediately (the copy is done when the
// instruction executes), which is a legal schedule: commit/wait become
// no-ops and "arrive on completion" arrives at once.  An mbarrier is a 64-bit
// word in shared memory with this (private) layout:
//   bits 0-20 pending arrivals, 21-41 expected arrivals,
//   42-62 transaction count (signed), 63 phase parity.
// Only warps of one block touch a block's shared memory and they run on one
// thread, so the word needs no host atomics.
#include "ptx/lanes.h"
#include "ptx/mem_access.h"
#include "ptx/runtime.h"

namespace simgpu::ptx {

namespace {

constexpr uint64_t kCountMask = (uint64_t(1) << 21) - 1;

struct Mb {
  uint64_t pending, expected;
  int64_t tx;
  uint64_t phase;
  static Mb load(uint64_t v) {
    Mb m;
    m.pending = v & kCountMask;
    m.expected = (v >> 21) & kCountMask;
    uint64_t t = (v >> 42) & kCountMask;
    m.tx = (t & (uint64_t(1) << 20)) ? int64_t(t) - int64_t(uint64_t(1) << 21) : int64_t(t);
    m.phase = v >> 63;
    return m;
  }
  uint64_t store() const {
    return (pending & kCountMask) | (expected & kCountMask) << 21 | (uint64_t(tx) & kCountMask) << 42 | phase << 63;
  }
  void maybe_complete() {
    if (pending == 0 && tx == 0) {
      phase ^= 1;
      pending = expected;
    }
  }
};

template <MbOp OP, MSp SP, bool A64>
int h_mbar(Ctx& c, const Inst& in, uint32_t m) {
  using AT = std::conditional_t<A64, uint64_t, uint32_t>;
  if constexpr (OP == MbOp::PendingCount) {
    const uint64_t* s = R<const uint64_t>(c, in.o[2]);
    uint32_t* d = R<uint32_t>(c, in.o[0]);
    SIM_FOR_LANES(m, i) d[i] = uint32_t(s[i] & kCountMask);
    return kNext;
  } else {
    uint8_t* ptr[32];
    if (int r = translate<SP, 8, AT>(c, in, m, ptr, true, "mbarrier")) return r;
    if constexpr (SP == MSp::Generic) {
      // An mbarrier lives in shared memory; generic addresses must point there.
      const uint64_t* a = R<const uint64_t>(c, in.o[4]);
      SIM_FOR_LANES(m, i) {
        uint64_t x = a[i] + uint64_t(in.imm);
        if (x - kSharedWin >= kWinSize) return mem_fault(c, in, i, x, false, 8, SP, "mbarrier (not shared memory)");
      }
    }
    const uint32_t* arg32 = R<const uint32_t>(c, in.o[2]);
    const uint64_t* arg64 = R<const uint64_t>(c, in.o[2]);
    uint64_t* d64 = R<uint64_t>(c, in.o[0]);
    uint32_t done = 0;
    bool any_false = false;
    SIM_FOR_LANES(m, i) {
      uint64_t* w = reinterpret_cast<uint64_t*>(ptr[i]);
      Mb b = Mb::load(*w);
      switch (OP) {
        case MbOp::Init: {
          uint64_t n = arg32[i] & kCountMask;
          b = Mb{n, n, 0, 0};
          break;
        }
        case MbOp::Inval: *w = 0; continue;
        case MbOp::Arrive:
        case MbOp::ArriveNoComplete:
        case MbOp::ArriveDrop:
        case MbOp::ArriveExpectTx:
        case MbOp::ArriveDropExpectTx: {
          uint64_t before = *w;
          uint64_t cnt = 1;
          if (OP == MbOp::ArriveExpectTx || OP == MbOp::ArriveDropExpectTx) b.tx += arg32[i];
          else if (in.aux2 & 1) cnt = arg32[i];
          b.pending = b.pending >= cnt ? b.pending - cnt : 0;
          if (OP == MbOp::ArriveDrop || OP == MbOp::ArriveDropExpectTx) b.expected = b.expected >= cnt ? b.expected - cnt : 0;
          if (OP != MbOp::ArriveNoComplete) b.maybe_complete();
          d64[i] = before;
          break;
        }
        case MbOp::CpAsyncArrive:
          // Increment then arrive: the copies are complete, the two cancel.
          continue;
        case MbOp::CpAsyncArriveNoinc:
          b.pending = b.pending ? b.pending - 1 : 0;
          b.maybe_complete();
          break;
        case MbOp::ExpectTx: b.tx += arg32[i]; break;
        case MbOp::CompleteTx:
          b.tx -= arg32[i];
          b.maybe_complete();
          break;
        case MbOp::TestWait:
        case MbOp::TryWait: {
          bool ok = (arg64[i] >> 63) != b.phase;
          done |= uint32_t(ok) << i;
          any_false |= !ok;
          continue;
        }
        case MbOp::TestWaitParity:
        case MbOp::TryWaitParity: {
          bool ok = (arg32[i] & 1) != b.phase;
          done |= uint32_t(ok) << i;
          any_false |= !ok;
          continue;
        }
        default: continue;
      }
      *w = b.store();
    }
    if constexpr (OP == MbOp::TestWait || OP == MbOp::TryWait || OP == MbOp::TestWaitParity ||
                  OP == MbOp::TryWaitParity) {
      set_pred(c, in.o[0], done, m);
      // Waiting depends on other warps: let them run.
      if (any_false) {
        c.w->pc = in.self + 1;
        return kSuspend;
      }
    }
    return kNext;
  }
}

template <MbOp OP>
OpFn mb_space(MSp sp, bool a64) {
  switch (sp) {
    case MSp::Shared: return a64 ? &h_mbar<OP, MSp::Shared, true> : &h_mbar<OP, MSp::Shared, false>;
    case MSp::Generic: return a64 ? &h_mbar<OP, MSp::Generic, true> : nullptr;
    default: return nullptr;
  }
}

// cp.async: o = {dst, src, srcsize, ignore-pred}; aux = site; aux2 = cp-size |
// has_srcsize << 8 | has_ignore << 9.
template <bool D64>
int h_cp_async(Ctx& c, const Inst& in, uint32_t m) {
  using DT = std::conditional_t<D64, uint64_t, uint32_t>;
  const DT* dst = R<const DT>(c, in.o[0]);
  const uint64_t* src = R<const uint64_t>(c, in.o[1]);
  const uint32_t* ssz = R<const uint32_t>(c, in.o[2]);
  uint32_t ign = (in.aux2 & 0x200) ? pred_word(c, in.o[3]) : 0;
  const unsigned n = in.aux2 & 0xff;
  MemCacheEntry& e = c.mc[in.aux];
  uint8_t* dp[32];
  const uint8_t* sp[32];
  unsigned cnt[32];
  SIM_FOR_LANES(m, i) {
    uint64_t da = uint64_t(dst[i]);
    unsigned k = (in.aux2 & 0x100) ? std::min<unsigned>(ssz[i], n) : n;
    if ((ign >> i) & 1) k = 0;
    if (da % n) return mem_fault(c, in, i, da, true, n, MSp::Shared, "cp.async destination");
    dp[i] = shared_xlate(c, da, n);
    if (!dp[i]) return mem_fault(c, in, i, da, false, n, MSp::Shared, "cp.async destination");
    sp[i] = nullptr;
    if (k) {
      uint64_t sa = src[i];
      if (sa % n) return mem_fault(c, in, i, sa, true, n, MSp::Global, "cp.async source");
      if (!global_ok(c, e, sa, k)) return mem_fault(c, in, i, sa, false, k, MSp::Global, "cp.async source");
      sp[i] = reinterpret_cast<const uint8_t*>(sa);
    }
    cnt[i] = k;
  }
  SIM_FOR_LANES(m, i) {
    if (cnt[i]) std::memcpy(dp[i], sp[i], cnt[i]);
    if (cnt[i] < n) std::memset(dp[i] + cnt[i], 0, n - cnt[i]);
  }
  return kNext;
}

// cp.async.bulk: o = {dst, src, size, mbar}; aux = site; aux2 = 0 global->shared
// (+ complete_tx on mbar), 1 shared->global, 2 shared->shared (+ complete_tx).
template <unsigned K>
int h_cp_bulk(Ctx& c, const Inst& in, uint32_t m) {
  const uint64_t* dst = R<const uint64_t>(c, in.o[0]);
  const uint64_t* src = R<const uint64_t>(c, in.o[1]);
  const uint32_t* sz = R<const uint32_t>(c, in.o[2]);
  const uint64_t* mb = R<const uint64_t>(c, in.o[3]);
  MemCacheEntry& e = c.mc[in.aux];
  SIM_FOR_LANES(m, i) {
    uint32_t n = sz[i];
    uint64_t da = dst[i], sa = src[i];
    if (n % 16 || da % 16 || sa % 16) return mem_fault(c, in, i, n % 16 ? sa : (da % 16 ? da : sa), true, 16, MSp::Global, "bulk copy");
    uint8_t* d = K == 1 ? (global_ok(c, e, da, n) ? reinterpret_cast<uint8_t*>(da) : nullptr) : shared_xlate(c, da, n);
    if (!d && n) return mem_fault(c, in, i, da, false, n, K == 1 ? MSp::Global : MSp::Shared, "bulk copy destination");
    MemCacheEntry e2{};
    const uint8_t* s = K == 0 ? (global_ok(c, e2, sa, n) ? reinterpret_cast<const uint8_t*>(sa) : nullptr) : shared_xlate(c, sa, n);
    if (!s && n) return mem_fault(c, in, i, sa, false, n, K == 0 ? MSp::Global : MSp::Shared, "bulk copy source");
    if (n) std::memmove(d, s, n);
    if (K != 1) {
      uint64_t ma = mb[i];
      if (ma % 8) return mem_fault(c, in, i, ma, true, 8, MSp::Shared, "mbarrier");
      uint8_t* w = shared_xlate(c, ma, 8);
      if (!w) return mem_fault(c, in, i, ma, false, 8, MSp::Shared, "mbarrier");
      uint64_t v;
      std::memcpy(&v, w, 8);
      Mb b = Mb::load(v);
      b.tx -= n;
      b.maybe_complete();
      v = b.store();
      std::memcpy(w, &v, 8);
    }
  }
  return kNext;
}

}  // namespace

OpFn sel_mbarrier(MbOp op, MSp sp, bool a64) {
  switch (op) {
#define M_(X) case MbOp::X: return mb_space<MbOp::X>(sp, a64);
    M_(Init) M_(Inval) M_(Arrive) M_(ArriveDrop) M_(ArriveNoComplete) M_(ExpectTx) M_(CompleteTx)
    M_(ArriveExpectTx) M_(ArriveDropExpectTx) M_(TestWait) M_(TryWait) M_(TestWaitParity) M_(TryWaitParity)
    M_(CpAsyncArrive) M_(CpAsyncArriveNoinc)
#undef M_
    case MbOp::PendingCount: return &h_mbar<MbOp::PendingCount, MSp::Shared, false>;
  }
  return nullptr;
}

OpFn sel_cp_async(bool dst64, bool) { return dst64 ? &h_cp_async<true> : &h_cp_async<false>; }

OpFn sel_cp_bulk(bool to_shared, MSp dsp, MSp ssp) {
  if (to_shared && ssp == MSp::Global) return &h_cp_bulk<0>;
  if (!to_shared && dsp == MSp::Global) return &h_cp_bulk<1>;
  if (to_shared && ssp == MSp::Shared) return &h_cp_bulk<2>;
  return nullptr;
}

}  // namespace simgpu::ptx
