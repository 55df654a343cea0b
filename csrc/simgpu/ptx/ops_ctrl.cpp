// Branches, calls, exit/trap, barriers and other warp-scheduling handlers.
#include <atomic>
#include <cstring>
#include <string>

#include "ptx/lanes.h"
#include "ptx/ops.h"
#include "ptx/runtime.h"

namespace simgpu::ptx {

namespace {

int yield_at(Ctx& c, uint32_t pc) {
  c.w->pc = pc;
  return kSuspend;
}

// End of a time slice at a backward branch.
int slice_over(Ctx& c, uint32_t pc) {
  c.w->pc = pc;
  simt_run_waiting_lanes(c);
  return kSuspend;
}

int h_bra(Ctx& c, const Inst& in, uint32_t m) {
  Warp& w = *c.w;
  if (m == 0) return kNext;
  const uint32_t target = in.aux;
  if (m == w.active) {
    w.pc = target;
    if (target <= in.self && --c.budget < 0) return slice_over(c, target);
    return kReload;
  }
  const uint32_t pcs[2] = {target, in.self + 1};
  const uint32_t masks[2] = {m, w.active & ~m};
  simt_split(c, pcs, masks, 2, in.aux2);
  return kReload;
}

int h_brx(Ctx& c, const Inst& in, uint32_t m) {
  Warp& w = *c.w;
  if (m == 0) return kNext;
  const std::vector<uint32_t>& tab = c.ir->branch_tables[in.aux];
  const uint32_t* idx = R<const uint32_t>(c, in.o[0]);
  uint32_t pcs[33], masks[33];
  int n = 0;
  SIM_FOR_LANES(m, i) {
    if (idx[i] >= tab.size())
      return raise_fault(c, in, Fault::IllegalInstruction, 0, i, "brx.idx index out of range");
    uint32_t t = tab[idx[i]];
    int k = 0;
    while (k < n && pcs[k] != t) ++k;
    if (k == n) {
      pcs[n] = t;
      masks[n++] = 0;
    }
    masks[k] |= 1u << i;
  }
  uint32_t rest = w.active & ~m;
  if (rest) {
    pcs[n] = in.self + 1;
    masks[n++] = rest;
  }
  if (n == 1) {
    w.pc = pcs[0];
    if (pcs[0] <= in.self && --c.budget < 0) return slice_over(c, pcs[0]);
    return kReload;
  }
  simt_split(c, pcs, masks, n, in.aux2);
  return kReload;
}

void copy_slot(uint8_t* dframe, const Slot& d, const uint8_t* sframe, const Slot& s, uint32_t m) {
  uint32_t n = std::min(d.size, s.size);
  SIM_FOR_LANES(m, i) std::memcpy(dframe + d.off + size_t(i) * d.stride, sframe + s.off + size_t(i) * s.stride, n);
}

int h_call(Ctx& c, const Inst& in, uint32_t m) {
  Warp& w = *c.w;
  if (m == 0) return kNext;
  const CallSite& cs = c.ir->calls[in.aux];
  uint32_t callee = cs.callee;
  if (callee == kNoPc) {
    // Indirect: lanes with different targets call one after another.
    const uint64_t* tgt = R<const uint64_t>(c, cs.target_off);
    uint32_t first = __builtin_ctz(m);
    uint64_t t0 = tgt[first];
    uint32_t same = 0;
    SIM_FOR_LANES(m, i) same |= uint32_t(tgt[i] == t0) << i;
    if (same != m) {
      uint32_t pcs[33], masks[33];
      int n = 0;
      uint32_t left = m;
      while (left) {
        uint64_t t = tgt[__builtin_ctz(left)];
        uint32_t g = 0;
        SIM_FOR_LANES(left, i) g |= uint32_t(tgt[i] == t) << i;
        pcs[n] = in.self;
        masks[n++] = g;
        left &= ~g;
      }
      uint32_t rest = w.active & ~m;
      if (rest) {
        pcs[n] = in.self + 1;
        masks[n++] = rest;
      }
      simt_split(c, pcs, masks, n, in.self + 1);
      return kReload;
    }
    uint64_t off = t0 - kFuncWin;
    if (t0 < kFuncWin || off % 16 || off / 16 >= c.ir->funcs.size() || !c.ir->funcs[off / 16].defined ||
        c.ir->funcs[off / 16].is_entry)
      return raise_fault(c, in, Fault::IllegalInstruction, t0, first, "indirect call to a non-function address");
    callee = uint32_t(off / 16);
    const FuncIR& f = c.ir->funcs[callee];
    if (f.params.size() != cs.args.size() || f.rets.size() != cs.rets.size())
      return raise_fault(c, in, Fault::IllegalInstruction, t0, first,
                         "indirect call to '" + f.name + "' with a mismatched prototype");
  }
  if (m != w.active) {
    // @p call: the other lanes wait after the call.
    w.simt.push_back({in.self + 1, w.active, w.rpc});
    w.active = m;
    w.rpc = in.self + 1;
  }
  const FuncIR& caller = c.ir->funcs[w.func];
  const FuncIR& f = c.ir->funcs[callee];
  uint32_t new_off = w.frame_off + caller.frame_size;
  if (size_t(new_off) + f.frame_size > w.regs_cap)
    return raise_fault(c, in, Fault::LaunchFailed, 0, __builtin_ctz(m), "call stack overflow (register frames)");
  uint32_t new_local = w.local_sp + caller.local_size;
  if (uint64_t(new_local) + f.local_size > c.L->local_stride)
    return raise_fault(c, in, Fault::LaunchFailed, 0, __builtin_ctz(m), "call stack overflow (local memory)");
  uint8_t* nf = w.regs + new_off;
  std::memcpy(nf, f.const_image.data(), f.const_image.size());
  for (size_t k = 0; k < cs.args.size() && k < f.params.size(); ++k)
    copy_slot(nf, f.params[k], c.frame, cs.args[k], w.active);
  w.calls.push_back(CallRec{in.self + 1, w.func, w.frame_off, w.local_sp, uint32_t(w.simt.size()), w.rpc, in.aux});
  w.func = callee;
  w.frame_off = new_off;
  w.local_sp = new_local;
  w.pc = f.entry_pc;
  w.rpc = kNoPc;
  sync_frame(c);
  return kReload;
}

int h_ret(Ctx& c, const Inst& in, uint32_t) {
  Warp& w = *c.w;
  if (w.calls.empty()) return raise_fault(c, in, Fault::IllegalInstruction, 0, __builtin_ctz(w.active), "ret without call");
  const CallRec r = w.calls.back();
  const CallSite& cs = c.ir->calls[r.call_site];
  const FuncIR& f = c.ir->funcs[w.func];
  uint8_t* callee_frame = c.frame;
  uint8_t* caller_frame = w.regs + r.caller_frame;
  for (size_t k = 0; k < cs.rets.size() && k < f.rets.size(); ++k)
    copy_slot(caller_frame, cs.rets[k], callee_frame, f.rets[k], w.active);
  leave_call(c);
  w.pc = r.ret_pc;
  w.rpc = r.rpc;
  return kReload;
}

int h_exit(Ctx& c, const Inst& in, uint32_t m) {
  if (m == 0) return kNext;
  return simt_exit(c, m, in.self + 1);
}

int h_trap(Ctx& c, const Inst& in, uint32_t m) {
  if (m == 0) return kNext;
  return raise_fault(c, in, Fault::Trap, 0, __builtin_ctz(m), in.aux ? "brkpt executed" : "trap executed");
}

int h_bar(Ctx& c, const Inst& in, uint32_t m) {
  if (m == 0) return kNext;
  Warp& w = *c.w;
  BlockState& b = *c.b;
  const uint32_t lane = __builtin_ctz(m);
  const uint32_t id = R<const uint32_t>(c, in.o[0])[lane];
  if (id >= 16) return raise_fault(c, in, Fault::IllegalInstruction, 0, lane, "barrier number out of range");
  Barrier& bar = b.bars[id];
  uint32_t expected = 0;
  if (in.aux2 & 1) {
    uint32_t cnt = R<const uint32_t>(c, in.o[1])[lane];
    if (cnt == 0 || cnt % 32 != 0 || cnt > c.L->nwarps * 32u)
      return raise_fault(c, in, Fault::IllegalInstruction, 0, lane, "barrier thread count not a multiple of 32");
    expected = cnt / 32;
  }
  if (bar.arrived == 0) bar.expected = expected;
  ++bar.arrived;
  const uint32_t kind = in.aux;
  if (kind >= 2) {
    uint32_t p = (pred_word(c, in.o[2]) ^ ((in.aux2 & 2) ? ~0u : 0u)) & m;
    bar.popc += uint32_t(__builtin_popcount(p));
    bar.all = bar.all && p == m;
    bar.any = bar.any || p != 0;
  }
  const uint32_t need = bar.expected ? bar.expected : b.live_warps;
  if (kind == 1) {  // bar.arrive does not wait
    if (bar.arrived >= need) check_barriers(c, b);
    return kNext;
  }
  w.state = WarpState::Barrier;
  w.bar_id = uint8_t(id);
  w.bar_kind = uint8_t(kind >= 2 ? kind - 1 : 0);
  w.bar_dst = w.frame_off + in.o[3];
  w.bar_mask = m;
  w.pc = in.self + 1;
  bar.waiters.push_back(w.id);
  if (bar.arrived >= need) {
    check_barriers(c, b);
    return kReload;  // released together with the others
  }
  return kSuspend;
}

// barrier.cluster.arrive / .wait for a cluster of one CTA: arrival counts
// warps of the block; wait blocks until the phase the warp arrived in ends.
int h_cluster_arrive(Ctx& c, const Inst&, uint32_t m) {
  if (m == 0) return kNext;
  BlockState& b = *c.b;
  c.w->cluster_phase = b.cluster_phase;
  ++b.cluster_arrived;
  check_barriers(c, b);
  return kNext;
}

int h_cluster_wait(Ctx& c, const Inst& in, uint32_t m) {
  if (m == 0) return kNext;
  BlockState& b = *c.b;
  Warp& w = *c.w;
  if (w.cluster_phase != b.cluster_phase) return kNext;
  w.state = WarpState::Barrier;
  w.bar_id = 16;
  w.bar_kind = 0;
  w.pc = in.self + 1;
  b.cluster_waiters.push_back(w.id);
  return kSuspend;
}

// mapa: the address of the same variable in CTA `rank` of the cluster; only
// rank 0 (this CTA) exists.
template <class T>
int h_mapa(Ctx& c, const Inst& in, uint32_t m) {
  const T* a = R<const T>(c, in.o[1]);
  const uint32_t* rank = R<const uint32_t>(c, in.o[2]);
  SIM_FOR_LANES(m, i) {
    if (rank[i] != 0)
      return raise_fault(c, in, Fault::IllegalAddress, uint64_t(a[i]), i, "mapa to CTA rank " + std::to_string(rank[i]) +
                                                                            " of a one-CTA cluster");
  }
  return map1<T, T>(c, in, m, [](T x) { return x; });
}

int h_nop(Ctx&, const Inst&, uint32_t) { return kNext; }

int h_nanosleep(Ctx& c, const Inst& in, uint32_t m) {
  if (m == 0) return kNext;
  return yield_at(c, in.self + 1);
}

int h_fence(Ctx&, const Inst&, uint32_t m) {
  if (m) std::atomic_thread_fence(std::memory_order_seq_cst);
  return kNext;
}

}  // namespace

OpFn sel_bra() { return &h_bra; }
OpFn sel_brx() { return &h_brx; }
OpFn sel_call() { return &h_call; }
OpFn sel_ret() { return &h_ret; }
OpFn sel_exit() { return &h_exit; }
OpFn sel_trap() { return &h_trap; }
OpFn sel_bar() { return &h_bar; }
OpFn sel_bar_warp() { return &h_nop; }
OpFn sel_nanosleep() { return &h_nanosleep; }
OpFn sel_fence() { return &h_fence; }
OpFn sel_nop() { return &h_nop; }
OpFn sel_cluster_barrier(bool wait) { return wait ? &h_cluster_wait : &h_cluster_arrive; }
OpFn sel_mapa(unsigned size) { return size == 8 ? &h_mapa<uint64_t> : size == 4 ? &h_mapa<uint32_t> : nullptr; }

}  // namespace simgpu::ptx
