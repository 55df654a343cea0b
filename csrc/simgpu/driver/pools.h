// Memory pools and stream-ordered allocation (cuMemAllocAsync / cuMemFreeAsync).
//
// A pool hands out whole heap blocks (no sub-allocation) and caches freed
// blocks for reuse.  A block freed on stream S may be reused at once by a
// later allocation on S (stream order makes that safe) and by any stream once
// the free has executed.  Cached memory stays charged to the device
// ("reserved") until a synchronisation finds the pool above its release
// threshold, or cuMemPoolTrimTo releases it, as CUDA documents.
#pragma once

#include "device.h"
#include "stream.h"

#include <map>
#include <unordered_map>

namespace simgpu {

struct MemPool : Object, std::enable_shared_from_this<MemPool> {
  MemPool() : Object(Kind::MemPool) {}
  CUmemoryPool handle() { return reinterpret_cast<CUmemoryPool>(this); }

  Device* dev = nullptr;
  bool is_default = false;
  CUmemPoolProps props{};

  std::mutex mu;  // guards the rest
  uint64_t release_threshold = 0;
  int reuse_follow_events = 1, reuse_opportunistic = 1, reuse_internal = 1;
  uint64_t reserved = 0, reserved_high = 0, used = 0, used_high = 0;
  uint32_t access_mask = 0;  // other devices granted read/write access
  bool destroyed = false;
  // A block freed with cuMemFreeAsync is cached at once, tagged with the
  // stream point of the free: the same stream may reuse it immediately (its
  // later work runs after the free), other streams once that point is reached.
  // Its range stays registered until the free executes, so kernels queued
  // before the free still see it; `gen` tells a stale free from a reuse.
  struct Block {
    uint64_t addr = 0;
    uint64_t held = 0;        // bytes taken from the heap
    uint64_t size = 0;        // bytes the application asked for
    uint64_t gen = 0;         // bumped at every (re)allocation
    std::weak_ptr<Stream> freed_on;
    uint64_t freed_seq = 0;   // UINT64_MAX until the free is queued
    bool range_live = false;  // its MemRange is still registered
  };
  std::unordered_map<uint64_t, Block> live;   // allocated
  std::multimap<uint64_t, Block> cached;      // freed, by held size
};

// The block at addr reached its cuMemFreeAsync (made in generation gen).
void pool_complete_free(MemPool& p, uint64_t addr, uint64_t gen);
// Frees a pool block synchronously (cuMemFree on stream-ordered memory).
CUresult pool_free_now(MemPool& p, uint64_t addr);
// After a stream/event/context synchronisation: release cached memory above thresholds.
void pools_trim_on_sync(Device& d);

}  // namespace simgpu
