// Allocation primitives shared by cuMemAlloc, pools, module globals and
// graph memory nodes.
#pragma once

#include "context.h"
#include "memmap.h"

namespace simgpu {

// Device memory on the context's device, charged against its size and
// registered as a Device range built from `proto` (kind, flags, pool...).
CUresult alloc_device(Context& c, uint64_t bytes, MemRange proto, uint64_t* out);
// Releases a range made by alloc_device (unregistered by the caller or here).
void release_device(const MemRange& r);
// Removes and releases the device range starting at addr.  INVALID_VALUE
// if there is none.
CUresult free_device(uint64_t addr);

// Host memory (pinned / managed): anonymous mappings outside every device region.
void* alloc_host_pages(uint64_t bytes, uint64_t* held);
void free_host_pages(void* p, uint64_t held);

// Waits for all outstanding work on every context of the device that owns
// the range (real cuMemFree and friends synchronise implicitly).
void sync_for_free(int device);

// Synchronous work in non-relaxed stream capture is an error (and ends the capture).
CUresult check_not_capturing_unsafe();

}  // namespace simgpu
