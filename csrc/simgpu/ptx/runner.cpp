// Program::run: blocks, warps, the dispatch loop and the SIMT stack.
#include <sys/mman.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>

#include "ptx/fp.h"
#include "ptx/pool.h"
#include "ptx/program.h"
#include "ptx/runtime.h"

namespace simgpu::ptx {

namespace {

std::atomic<uint64_t> g_retired{0};
std::atomic<uint64_t> g_gridid{1};

// Lazily committed memory for register frames, local memory and shared
// memory; reused across blocks and launches by the thread that owns it.
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() { release(); }
  uint8_t* get(size_t n) {
    if (n == 0) n = 1;
    if (n > cap_) {
      release();
      size_t sz = (n + 4095) & ~size_t(4095);
      void* p = mmap(nullptr, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) return nullptr;
      p_ = static_cast<uint8_t*>(p);
      cap_ = sz;
    }
    return p_;
  }

 private:
  void release() {
    if (p_) munmap(p_, cap_);
    p_ = nullptr;
    cap_ = 0;
  }
  uint8_t* p_ = nullptr;
  size_t cap_ = 0;
};

struct BlockMem {
  Arena regs, local, shared;
};

}  // namespace

uint64_t instructions_retired() { return g_retired.load(std::memory_order_relaxed); }

// ---------------------------------------------------------------- faults

std::string describe_thread(const Ctx& c, uint32_t lane) {
  char buf[160];
  const Warp& w = *c.w;
  std::snprintf(buf, sizeof buf, "block (%u,%u,%u), thread (%u,%u,%u)", c.b->ctaid[0], c.b->ctaid[1],
                c.b->ctaid[2], w.tid[0][lane], w.tid[1][lane], w.tid[2][lane]);
  return buf;
}

int raise_fault(Ctx& c, const Inst& in, Fault f, uint64_t addr, uint32_t lane, std::string msg) {
  if (c.fault != Fault::None) return kSuspend;
  c.fault = f;
  c.fault_addr = addr;
  c.fault_lane = lane;
  c.fault_inst = &in;
  c.fault_msg = std::move(msg);
  c.w->pc = in.self;
  return kSuspend;
}

bool global_lookup(Ctx& c, MemCacheEntry& e, uint64_t a, unsigned size) {
  const MemoryView& mv = c.L->launch->memory;
  auto fill = [&](uint64_t lo, uint64_t hi) {
    if (hi - lo < size) return false;
    if (a < lo || a > hi - size) return false;
    e.lo = lo;
    e.len = (hi - lo) - size + 1;
    return true;
  };
  if (mv.count) {
    // Last range whose begin <= a.
    const uint64_t* b = mv.begin;
    size_t lo = 0, hi = mv.count;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (b[mid] <= a) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && fill(b[lo - 1], mv.end[lo - 1])) return true;
  }
  if (c.L->grid_ws && fill(c.L->grid_ws, c.L->grid_ws + 64)) return true;
  return false;
}

// ---------------------------------------------------------------- SIMT

void leave_call(Ctx& c) {
  Warp& w = *c.w;
  const CallRec r = w.calls.back();
  w.calls.pop_back();
  w.func = r.caller_func;
  w.frame_off = r.caller_frame;
  w.local_sp = r.caller_local;
  sync_frame(c);
}

bool simt_pop(Ctx& c) {
  Warp& w = *c.w;
  for (;;) {
    if (w.simt.empty()) {
      w.active = 0;
      return false;
    }
    SimtEntry e = w.simt.back();
    w.simt.pop_back();
    while (!w.calls.empty() && w.simt.size() < w.calls.back().simt_depth) leave_call(c);
    w.pc = e.pc;
    w.active = e.mask & w.live;
    w.rpc = e.rpc;
    if (w.active) return true;
  }
}

void simt_split(Ctx& c, const uint32_t* pcs, const uint32_t* masks, int n, uint32_t rpc) {
  Warp& w = *c.w;
  // The region's own continuation is already on the stack when the enclosing
  // path reconverges at the same point.
  if (rpc != w.rpc) w.simt.push_back({rpc, w.active, w.rpc});
  for (int k = n - 1; k >= 0; --k)
    if (pcs[k] != rpc) w.simt.push_back({pcs[k], masks[k], rpc});
  w.active = 0;
  simt_pop(c);
}

void simt_run_waiting_lanes(Ctx& c) {
  Warp& w = *c.w;
  // Barriers count warps and collectives read sibling lanes' registers: where
  // they occur, lanes stay together (as on pre-Volta GPUs).
  if (c.ir->funcs[w.func].lockstep) return;
  size_t floor = w.calls.empty() ? 0 : w.calls.back().simt_depth;
  if (w.simt.size() <= floor) return;
  SimtEntry& cont = w.simt.back();
  // Only when no sibling path is pending: then every lane of the region that
  // is not running has reached the reconvergence point.
  if (cont.pc != w.rpc) return;
  uint32_t waiting = cont.mask & ~w.active & w.live;
  if (!waiting) return;
  const SimtEntry spinning{w.pc, w.active, cont.rpc};
  w.pc = cont.pc;
  w.active = waiting;
  w.rpc = cont.rpc;
  cont = spinning;
}

int simt_exit(Ctx& c, uint32_t lanes, uint32_t next_pc) {
  Warp& w = *c.w;
  w.live &= ~lanes;
  for (SimtEntry& e : w.simt) e.mask &= ~lanes;
  w.active &= ~lanes;
  if (w.live == 0) {
    w.state = WarpState::Done;
    w.active = 0;
    return kSuspend;
  }
  if (w.active) {
    w.pc = next_pc;
    return kReload;
  }
  simt_pop(c);
  return kReload;
}

// ---------------------------------------------------------------- barriers

void check_barriers(Ctx& c, BlockState& b) {
  if (b.cluster_arrived && b.cluster_arrived >= b.live_warps) {
    b.cluster_arrived = 0;
    ++b.cluster_phase;
    for (uint32_t wi : b.cluster_waiters) b.warps[wi].state = WarpState::Ready;
    b.cluster_waiters.clear();
  }
  for (unsigned id = 0; id < 16; ++id) {
    Barrier& bar = b.bars[id];
    if (bar.arrived == 0) continue;
    uint32_t need = bar.expected ? bar.expected : b.live_warps;
    if (bar.arrived < need) continue;
    for (uint32_t wi : bar.waiters) {
      Warp& w = b.warps[wi];
      w.state = WarpState::Ready;
      if (w.bar_kind == 1) {  // bar.red.popc.u32
        uint32_t* d = reinterpret_cast<uint32_t*>(w.regs + w.bar_dst);
        SIM_FOR_LANES(w.bar_mask, i) d[i] = bar.popc;
      } else if (w.bar_kind) {  // bar.red.and/or.pred
        uint32_t* p = reinterpret_cast<uint32_t*>(w.regs + w.bar_dst);
        uint32_t val = (w.bar_kind == 2 ? bar.all : bar.any) ? ~0u : 0u;
        *p = (*p & ~w.bar_mask) | (val & w.bar_mask);
      }
    }
    bar = Barrier();
  }
}

// ---------------------------------------------------------------- dispatch

void run_warp(Ctx& c, Warp& w) {
  const Inst* const code = c.code;
  c.w = &w;
  sync_frame(c);
  c.budget = kYieldBudget;
  while (w.pc == w.rpc && simt_pop(c)) {
  }
  uint32_t pc = w.pc, active = w.active, rpc = w.rpc;
  uint64_t retired = 0;
  for (;;) {
    const Inst& in = code[pc];
    uint32_t g;
    std::memcpy(&g, c.frame + in.guard, 4);
    const uint32_t m = active & (g ^ in.gxor);
    retired += uint32_t(__builtin_popcount(active));
    const int s = in.fn(c, in, m);
    if (__builtin_expect(s == kNext, 1)) {
      if (__builtin_expect(++pc != rpc, 1)) continue;
      w.pc = pc;
    } else if (s == kSuspend) {
      break;
    }
    // kReload, or the next pc is the reconvergence point.
    while (w.pc == w.rpc) {
      if (!simt_pop(c)) break;
    }
    pc = w.pc;
    active = w.active;
    rpc = w.rpc;
  }
  c.retired += retired;
}

// ---------------------------------------------------------------- blocks

namespace {

// Prepares block `linear` in b.  False when host memory for it is exhausted.
bool init_block(Ctx& c, BlockState& b, uint64_t linear, BlockMem& mem, bool fresh) {
  const LaunchState& L = *c.L;
  const Launch& la = *L.launch;
  b.linear = linear;
  b.ctaid[0] = uint32_t(linear % la.grid.x);
  b.ctaid[1] = uint32_t((linear / la.grid.x) % la.grid.y);
  b.ctaid[2] = uint32_t(linear / (uint64_t(la.grid.x) * la.grid.y));
  b.shared = mem.shared.get(L.shared_size);
  uint8_t* regs = mem.regs.get(L.regstack * L.nwarps);
  uint8_t* local = mem.local.get(size_t(L.local_stride) * 32 * L.nwarps);
  if (!b.shared || !regs || !local) return false;
  b.done = false;
  b.next_warp = 0;
  for (Barrier& bar : b.bars) bar = Barrier();
  b.cluster_arrived = 0;
  b.cluster_phase = 0;
  b.cluster_waiters.clear();
  const FuncIR& kf = L.ir->funcs[L.kir->func];
  b.warps.resize(L.nwarps);
  b.live_warps = L.nwarps;
  for (uint32_t k = 0; k < L.nwarps; ++k) {
    Warp& w = b.warps[k];
    uint32_t lanes = std::min<uint32_t>(32, L.nthreads - 32 * k);
    uint32_t mask = lanes == 32 ? ~0u : ((1u << lanes) - 1);
    w.id = k;
    w.pc = kf.entry_pc;
    w.active = w.live = mask;
    w.rpc = kNoPc;
    w.func = L.kir->func;
    w.frame_off = 0;
    w.local_sp = 0;
    w.state = WarpState::Ready;
    w.bar_kind = 0;
    w.simt.clear();
    w.calls.clear();
    uint8_t* wr = regs + L.regstack * k;
    if (fresh || w.regs != wr) std::memcpy(wr, kf.const_image.data(), kf.const_image.size());
    w.regs = wr;
    w.regs_cap = L.regstack;
    w.local = local + size_t(L.local_stride) * 32 * k;

    // Thread indices are the same for every block of the launch.
    if (fresh || b.tid_for != &la) {
      uint32_t t = 32 * k;
      uint32_t x = t % la.block.x, y = (t / la.block.x) % la.block.y, z = t / (la.block.x * la.block.y);
      for (uint32_t l = 0; l < 32; ++l) {
        w.tid[0][l] = x;
        w.tid[1][l] = y;
        w.tid[2][l] = z;
        if (++x == la.block.x) {
          x = 0;
          if (++y == la.block.y) y = 0, ++z;
        }
      }
    }
  }
  b.tid_for = &la;
  (void)c;
  return true;
}

void record_fault(Ctx& c) {
  LaunchState& L = *c.L;
  std::lock_guard<std::mutex> lk(L.mu);
  if (L.outcome.fault == Fault::None) {
    L.outcome.fault = c.fault;
    L.outcome.address = c.fault_addr;
    std::string d = c.fault_msg;
    if (!d.empty()) d += ": ";
    d += "kernel " + L.info->name + ", " + describe_thread(c, c.fault_lane);
    if (c.fault_inst) d += ", " + L.ir->texts[c.fault_inst->src];
    L.outcome.detail = std::move(d);
  }
  L.abort.store(true, std::memory_order_relaxed);
}

// Runs the block's ready warps; with `one_round`, each gets one turn.
// Returns true when the block is finished (or the launch failed).
bool run_block(Ctx& c, BlockState& b, bool one_round) {
  c.b = &b;
  for (;;) {
    bool ran = false;
    for (uint32_t k = 0; k < b.warps.size(); ++k) {
      Warp& w = b.warps[k];
      if (w.state != WarpState::Ready) continue;
      ran = true;
      run_warp(c, w);
      if (c.fault != Fault::None) {
        record_fault(c);
        return true;
      }
      if (w.state == WarpState::Done) {
        --b.live_warps;
        check_barriers(c, b);
      }
    }
    if (b.live_warps == 0) return true;
    if (!ran) {
      // Every live warp waits at a barrier that can no longer complete.
      for (Warp& w : b.warps)
        if (w.state == WarpState::Barrier) {
          c.w = &w;
          const Inst& in = c.code[w.pc - 1];
          raise_fault(c, in, Fault::LaunchFailed, 0, uint32_t(__builtin_ctz(w.live)),
                      "deadlock: warps wait at barrier " + std::to_string(w.bar_id) +
                          " that the other threads of the block never reach");
          w.pc = in.self;
          record_fault(c);
          return true;
        }
      return true;
    }
    if (one_round || c.L->abort.load(std::memory_order_relaxed)) return false;
  }
}

void start_ctx(Ctx& c, LaunchState& L, std::vector<MemCacheEntry>& mc, unsigned worker) {
  c.L = &L;
  c.ir = L.ir;
  c.code = L.ir->code.data();
  mc.assign(std::max<uint32_t>(1, L.ir->mem_sites), MemCacheEntry{});
  c.mc = mc.data();
  c.worker = worker;
}

// Independent blocks: workers claim them one at a time.
class GridTask final : public Task {
 public:
  explicit GridTask(LaunchState& L) : L_(L) {}
  bool work(unsigned worker) override {
    thread_local BlockMem mem;
    thread_local BlockState block;
    Ctx c;
    std::vector<MemCacheEntry> mc;
    start_ctx(c, L_, mc, worker);
    bool fresh = true;
    for (;;) {
      if (L_.abort.load(std::memory_order_relaxed)) break;
      uint64_t b = next_.fetch_add(1, std::memory_order_relaxed);
      if (b >= L_.nblocks) break;
      bool ok = init_block(c, block, b, mem, fresh);
      fresh = false;
      if (!ok) {
        std::lock_guard<std::mutex> lk(L_.mu);
        L_.outcome.fault = Fault::LaunchFailed;
        L_.outcome.detail = "out of host memory for a block";
        L_.abort.store(true);
        break;
      }
      run_block(c, block, false);
      if (c.fault != Fault::None) break;
    }
    g_retired.fetch_add(c.retired, std::memory_order_relaxed);
    return false;
  }

 private:
  LaunchState& L_;
  std::atomic<uint64_t> next_{0};
};

// Cooperative launch: every block is resident.  Partition k holds blocks
// k, k+P, ... and round-robins them; partition 0 runs on the caller so the
// launch always progresses even when every pool thread is busy elsewhere.
class CoopPart final : public Task {
 public:
  CoopPart(LaunchState& L, unsigned part, unsigned nparts) : L_(L), part_(part), nparts_(nparts) {}
  bool work(unsigned worker) override {
    if (claimed_.exchange(true)) return false;
    run(worker);
    return false;
  }
  void run(unsigned worker) {
    Ctx c;
    std::vector<MemCacheEntry> mc;
    start_ctx(c, L_, mc, worker);
    std::vector<std::unique_ptr<BlockMem>> mems;
    std::vector<std::unique_ptr<BlockState>> blocks;
    for (uint64_t b = part_; b < L_.nblocks; b += nparts_) {
      mems.push_back(std::make_unique<BlockMem>());
      blocks.push_back(std::make_unique<BlockState>());
      Ctx ci = c;
      if (!init_block(ci, *blocks.back(), b, *mems.back(), true)) {
        std::lock_guard<std::mutex> lk(L_.mu);
        L_.outcome.fault = Fault::LaunchFailed;
        L_.outcome.detail = "out of memory for resident blocks of a cooperative launch";
        L_.abort.store(true);
        return;
      }
    }
    size_t left = blocks.size();
    std::vector<uint8_t> done(blocks.size(), 0);
    while (left && !L_.abort.load(std::memory_order_relaxed)) {
      for (size_t i = 0; i < blocks.size(); ++i) {
        if (done[i]) continue;
        if (run_block(c, *blocks[i], true)) {
          done[i] = 1;
          --left;
        }
        if (c.fault != Fault::None) break;
      }
      if (c.fault != Fault::None) break;
    }
    g_retired.fetch_add(c.retired, std::memory_order_relaxed);
  }

 private:
  LaunchState& L_;
  unsigned part_, nparts_;
  std::atomic<bool> claimed_{false};
};

Outcome invalid(const std::string& msg) {
  Outcome o;
  o.fault = Fault::LaunchFailed;
  o.detail = msg;
  return o;
}

}  // namespace

Outcome ProgramImpl::run(const Launch& la) const {
  if (la.program != this) return invalid("launch of another program");
  if (la.kernel < 0 || size_t(la.kernel) >= ir.kernels.size()) return invalid("no such kernel");
  const KernelInfo& k = ir.kernels[size_t(la.kernel)];
  const KernelIR& kir = ir.kernel_ir[size_t(la.kernel)];
  uint64_t nthreads = la.block.count(), nblocks = la.grid.count();
  if (nthreads == 0 || nblocks == 0) return invalid("empty grid or block");
  if (nthreads > k.max_threads_per_block || nthreads > 1024)
    return invalid("block of " + std::to_string(nthreads) + " threads exceeds the kernel's limit of " +
                   std::to_string(std::min<uint32_t>(1024, k.max_threads_per_block)));
  if (k.reqntid.x && (la.block.x != k.reqntid.x || la.block.y != k.reqntid.y || la.block.z != k.reqntid.z))
    return invalid("block shape differs from the kernel's .reqntid");
  if (k.param_bytes && !la.params) return invalid("missing kernel parameters");

  LaunchState L;
  L.prog = this;
  L.ir = &ir;
  L.launch = &la;
  L.info = &k;
  L.kir = &kir;
  L.nthreads = uint32_t(nthreads);
  L.nwarps = uint32_t((nthreads + 31) / 32);
  L.nblocks = nblocks;
  uint32_t dyn_align = std::max<uint32_t>(16, ir.dyn_shared_align);
  L.dyn_base = (k.static_shared_bytes + dyn_align - 1) & ~(dyn_align - 1);
  uint64_t shared = uint64_t(L.dyn_base) + la.dynamic_shared_bytes;
  if (shared > (uint64_t(1) << 30)) return invalid("shared memory request too large");
  L.shared_size = uint32_t(shared);
  L.local_stride = (kir.local_per_thread + 15) & ~15u;
  L.regstack = std::max<size_t>(kir.regstack_per_warp, ir.funcs[kir.func].frame_size);
  L.gridid = g_gridid.fetch_add(1, std::memory_order_relaxed);

  alignas(64) uint8_t workspace[64] = {};
  if (la.cooperative) L.grid_ws = reinterpret_cast<uint64_t>(workspace);

  Pool& pool = Pool::instance();
  if (!la.cooperative) {
    GridTask t(L);
    pool.submit(&t);
    pool.wait(&t);
  } else {
    unsigned parts = unsigned(std::min<uint64_t>(worker_count(), nblocks));
    std::vector<std::unique_ptr<CoopPart>> ps;
    for (unsigned p = 0; p < parts; ++p) ps.push_back(std::make_unique<CoopPart>(L, p, parts));
    for (unsigned p = 1; p < parts; ++p) pool.submit(ps[p].get());
    // The caller runs partition 0 with the default SSE environment.
    uint32_t saved = fp::mxcsr_get();
    fp::mxcsr_set(0x1f80);
    ps[0]->work(0);
    fp::mxcsr_set(saved);
    for (unsigned p = 1; p < parts; ++p) pool.wait(ps[p].get());
  }

  if (!L.printf_out.empty()) {
    std::fwrite(L.printf_out.data(), 1, L.printf_out.size(), stdout);
    std::fflush(stdout);
  }
  return std::move(L.outcome);
}

}  // namespace simgpu::ptx
