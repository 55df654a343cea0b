// Kernel launches: validation against the H100's limits, parameter packing,
// execution through the PTX engine, occupancy.
#pragma once

#include "module.h"
#include "stream.h"

namespace simgpu {

// Checks a launch and packs its parameters (kernelParams or `extra`).
CUresult prepare_launch(const std::shared_ptr<Function>& f, const ptx::Dim3& grid, const ptx::Dim3& block,
                        uint32_t shared_bytes, bool cooperative, void** kernelParams, void** extra, KernelWork& out);
// Runs a kernel on a stream worker; a fault becomes the context's sticky error.
void run_kernel(KernelWork& k, Stream& s);
CUresult fault_result(ptx::Fault f);

// Occupancy on one SM (0 when the block cannot run at all).
int blocks_per_sm(const ptx::KernelInfo& k, int block_threads, uint64_t dynamic_shared);
int max_threads_for_regs(unsigned regs);

}  // namespace simgpu
