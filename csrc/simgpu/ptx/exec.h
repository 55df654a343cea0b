// Run-time state of a launch and the helpers every handler uses.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "ptx/engine.h"
#include "ptx/ir.h"

namespace simgpu::ptx {

// Generic addresses of the per-block and per-thread windows.  They sit above
// every user-space virtual address (device addresses are host addresses), so
// a generic address is classified by comparison alone.
constexpr uint64_t kSharedWin = uint64_t(1) << 48;
constexpr uint64_t kLocalWin = uint64_t(2) << 48;
constexpr uint64_t kParamWin = uint64_t(3) << 48;
constexpr uint64_t kFuncWin = uint64_t(4) << 48;   // "addresses" of functions
constexpr uint64_t kWinSize = uint64_t(1) << 40;

struct SimtEntry {
  uint32_t pc, mask, rpc;
};

struct CallRec {
  uint32_t ret_pc;
  uint32_t caller_func;
  uint32_t caller_frame;   // frame offset of the caller in Warp::regs
  uint32_t caller_local;   // caller's local_sp
  uint32_t simt_depth;     // simt.size() at the call
  uint32_t rpc;            // caller's reconvergence pc
  uint32_t call_site;      // index into ProgramIR::calls
};

enum class WarpState : uint8_t { Ready, Barrier, Done };

struct Warp {
  uint32_t pc = 0, active = 0, rpc = kNoPc;
  uint32_t live = 0;             // lanes that have not exited
  uint32_t id = 0;               // warp index in the block
  uint32_t func = 0;
  uint32_t frame_off = 0;        // current frame in regs
  uint32_t local_sp = 0;         // local address of the current .local frame
  WarpState state = WarpState::Ready;
  uint8_t bar_id = 0;
  uint32_t bar_dst = 0;          // absolute regs offset of a bar.red destination
  uint8_t bar_kind = 0;          // 0 sync, 1 red.popc, 2 red.and, 3 red.or
  uint32_t bar_mask = 0;         // lanes that receive the bar.red result
  uint32_t cluster_phase = 0;    // phase of the cluster barrier this warp arrived in
  uint8_t* regs = nullptr;       // frames, innermost last
  size_t regs_cap = 0;
  uint8_t* local = nullptr;      // lane l's local memory at local + l * local_stride
  std::vector<SimtEntry> simt;
  std::vector<CallRec> calls;
  uint32_t tid[3][32];
};

struct Barrier {
  uint32_t arrived = 0;   // warps
  uint32_t expected = 0;  // warps; 0 = all live warps
  uint32_t popc = 0;
  bool all = true, any = false;
  std::vector<uint32_t> waiters;
};

struct BlockState {
  uint32_t ctaid[3] = {0, 0, 0};
  uint64_t linear = 0;
  uint8_t* shared = nullptr;
  std::vector<Warp> warps;
  uint32_t live_warps = 0;
  Barrier bars[16];
  bool done = false;
  uint32_t next_warp = 0;        // round-robin cursor
  const Launch* tid_for = nullptr;  // launch whose thread indices warps hold
  // barrier.cluster of the (one-CTA) cluster: split arrive/wait by phase.
  uint32_t cluster_arrived = 0, cluster_phase = 0;
  std::vector<uint32_t> cluster_waiters;
};

struct MemCacheEntry {
  uint64_t lo = 0, len = 0;      // a is inside when a - lo < len
};

class ProgramImpl;

// One run() in flight.
struct LaunchState {
  const ProgramImpl* prog = nullptr;
  const ProgramIR* ir = nullptr;
  const Launch* launch = nullptr;
  const KernelInfo* info = nullptr;
  const KernelIR* kir = nullptr;
  uint32_t nthreads = 0, nwarps = 0;
  uint64_t nblocks = 0;
  uint32_t shared_size = 0;      // static + dynamic
  uint32_t dyn_base = 0;         // shared offset of dynamic shared memory
  uint32_t local_stride = 0;     // bytes of local memory per thread
  size_t regstack = 0;           // bytes of register frames per warp
  uint64_t grid_ws = 0;          // cooperative-launch workspace (0 when none)
  uint64_t gridid = 0;
  std::atomic<bool> abort{false};
  std::mutex mu;                 // guards outcome and printf_out
  Outcome outcome;
  std::string printf_out;
};

struct Ctx {
  uint8_t* frame = nullptr;
  Warp* w = nullptr;
  BlockState* b = nullptr;
  LaunchState* L = nullptr;
  const Inst* code = nullptr;
  const ProgramIR* ir = nullptr;
  MemCacheEntry* mc = nullptr;
  uint64_t retired = 0;
  int budget = 0;                // backward branches left before yielding
  unsigned worker = 0;
  // First fault of this warp run.
  Fault fault = Fault::None;
  uint64_t fault_addr = 0;
  uint32_t fault_lane = 0;
  const Inst* fault_inst = nullptr;
  std::string fault_msg;
};

template <class T>
inline T* R(Ctx& c, uint32_t off) {
  return reinterpret_cast<T*>(c.frame + off);
}
inline uint32_t pred_word(Ctx& c, uint32_t off) {
  uint32_t v;
  std::memcpy(&v, c.frame + off, 4);
  return v;
}
inline void set_pred(Ctx& c, uint32_t off, uint32_t value, uint32_t mask) {
  uint32_t* p = R<uint32_t>(c, off);
  *p = (*p & ~mask) | (value & mask);
}

// Records a fault for the current instruction; returns kSuspend.
int raise_fault(Ctx& c, const Inst& in, Fault f, uint64_t addr, uint32_t lane, std::string msg = {});

// Slow path of the global range check: binary search in Launch::memory (and
// the launch's own workspace); fills `e` on success.
bool global_lookup(Ctx& c, MemCacheEntry& e, uint64_t a, unsigned size);

inline bool global_ok(Ctx& c, MemCacheEntry& e, uint64_t a, unsigned size) {
  return a - e.lo < e.len || global_lookup(c, e, a, size);
}

// Translates a generic address to a host pointer, or null when [a, a+size)
// is not entirely inside one window/range.
inline uint8_t* generic_xlate(Ctx& c, MemCacheEntry& e, uint64_t a, unsigned size, unsigned lane,
                              bool write) {
  if (a < kSharedWin) return global_ok(c, e, a, size) ? reinterpret_cast<uint8_t*>(a) : nullptr;
  uint64_t o = a - kSharedWin;
  if (o < kWinSize) return o + size <= c.L->shared_size ? c.b->shared + o : nullptr;
  o = a - kLocalWin;
  if (o < kWinSize)
    return o + size <= c.L->local_stride ? c.w->local + size_t(lane) * c.L->local_stride + o : nullptr;
  o = a - kParamWin;
  if (o < kWinSize && !write) {
    const KernelInfo* k = c.L->info;
    return o + size <= k->param_bytes ? const_cast<uint8_t*>(c.L->launch->params) + o : nullptr;
  }
  return nullptr;
}

inline uint8_t* shared_xlate(Ctx& c, uint64_t o, unsigned size) {
  return o + size <= c.L->shared_size && o < kWinSize ? c.b->shared + o : nullptr;
}
inline uint8_t* local_xlate(Ctx& c, uint64_t o, unsigned size, unsigned lane) {
  return o + size <= c.L->local_stride && o < kWinSize
             ? c.w->local + size_t(lane) * c.L->local_stride + o
             : nullptr;
}

// Lane iteration over a mask.
#define SIM_FOR_LANES(m, i) \
  for (uint32_t _mm = (m), i; _mm && ((i = __builtin_ctz(_mm)), true); _mm &= _mm - 1)

}  // namespace simgpu::ptx
