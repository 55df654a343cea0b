// Shared plumbing of the memcpy / memset entry points.
#pragma once

#include "memmap.h"
#include "stream.h"

namespace simgpu {

// Where one side of a copy lives.
enum class Where : uint8_t {
  Pageable,  // plain host memory the driver knows nothing about
  Pinned,    // cuMemAllocHost / cuMemHostAlloc / cuMemHostRegister
  Device,    // device, managed or VMM memory
};

// Classifies [addr, addr+len): a registered range must contain all of it.
// INVALID_VALUE when it starts in one but runs past its end, or is an
// inaccessible VMM mapping.
CUresult classify(uint64_t addr, uint64_t len, Where& out);
// A pointer the API says is device memory (UVA: pinned host memory counts too).
CUresult check_device_ptr(uint64_t addr, uint64_t len);

// Issues a copy on stream s with CUDA's documented host synchronisation:
// async API: pageable sources are staged (the caller may reuse the buffer at
// once), copies into pageable memory complete before returning; sync API:
// device-to-device copies are asynchronous, everything else completes before
// returning.  While s captures the copy becomes a graph node unchanged.
CUresult issue_copy(Stream& s, CopyWork w, Where src, Where dst, bool async_api);
// Same for memset (sync API: waits only when the target is host memory).
CUresult issue_memset(Stream& s, MemsetWork w, bool async_api);

// The stream a synchronous call runs on: legacy, or the thread's own for _ptds.
CUresult sync_stream(bool ptds, std::shared_ptr<Stream>& out);

// A CUDA_MEMCPY3D (graph memcpy node) as work, validated like cuMemcpy3D.
CUresult copy_work_from_3d(const CUDA_MEMCPY3D& p, CopyWork& out);
// A memset node's parameters as work, validated like cuMemsetD2D*.
CUresult memset_work_from_params(const CUDA_MEMSET_NODE_PARAMS& p, MemsetWork& out);

// Executes copies and memsets (exec.cpp calls these).
void run_copy(const CopyWork& w);
void run_memset(const MemsetWork& w);

}  // namespace simgpu
