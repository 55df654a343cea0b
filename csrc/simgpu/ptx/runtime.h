// Warp scheduling and SIMT-stack operations shared by the dispatcher and the
// control-flow handlers.
#pragma once

#include <cstdint>
#include <memory>

#include "ptx/exec.h"

namespace simgpu::ptx {

// Replaces the current path with the top suspended one (popping call frames
// that the stack unwinds past).  Returns false when no lanes are left.
bool simt_pop(Ctx& c);

// Splits the current path into `n` paths (distinct pcs, non-empty disjoint
// masks covering w.active) that reconverge at `rpc`.
void simt_split(Ctx& c, const uint32_t* pcs, const uint32_t* masks, int n, uint32_t rpc);

// Retires `lanes` for good.  Returns kReload when the warp goes on with
// other lanes, kSuspend when the warp has no live lane left.
int simt_exit(Ctx& c, uint32_t lanes, uint32_t next_pc);

// Forward progress for lanes that wait at a reconvergence point while the
// running lanes spin (e.g. for a lock one of the waiting lanes holds, which
// Volta's independent thread scheduling lets complete): the waiting lanes run
// ahead and the spinning ones rejoin them at the enclosing reconvergence
// point.  Called when a diverged warp uses up its time slice, in functions
// without barriers, warp collectives or calls.
void simt_run_waiting_lanes(Ctx& c);

// Unwinds the innermost call frame without copying results.
void leave_call(Ctx& c);

// Makes the current frame pointer follow w.frame_off after calls/returns.
inline void sync_frame(Ctx& c) { c.frame = c.w->regs + c.w->frame_off; }

// Barrier bookkeeping of a block: releases the waiters of every barrier whose
// arrival count is complete.
void check_barriers(Ctx& c, BlockState& b);

// Backward branches a warp may take before it yields to its siblings.
constexpr int kYieldBudget = 1024;

// Writes a formatted fault into c and returns kSuspend (see raise_fault).
std::string describe_thread(const Ctx& c, uint32_t lane);

// Executes warp w until it suspends (barrier, yield, exit, fault).
void run_warp(Ctx& c, Warp& w);

}  // namespace simgpu::ptx
