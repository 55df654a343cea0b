// Device memory of one client, allocated by the proxy on the virtual-memory
// API inside the job's fixed address range.  Because every address is chosen
// here and backed by cuMemCreate + cuMemMap, a restore can reserve the same
// range on any device and map the same blocks at the same addresses.
//
// Large allocations get their own physical allocation; small ones are carved
// from 2 MiB slabs by size class.  All of it is recorded for checkpoints.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "driver_api.h"

namespace sing::proxy {

class DeviceHeap {
 public:
  // The job's address range, already reserved on the backend.
  void init(uint64_t base, uint64_t size);

  // Stream-ordinary cuMemAlloc: an address inside the range, mapped and
  // accessible from `device`.
  // `context` (the app's id of the current context) owns the allocation:
  // destroying that context frees it, as on a GPU.  `pool` (0: cuMemAlloc
  // memory) decides who else may access it: memory of different pools never
  // shares a mapping, since access is granted per mapping.
  CUresult alloc(uint64_t bytes, CUdevice device, uint64_t context, uint64_t* out, uint64_t pool = 0);
  // Only the exact base of a live allocation; anything else is INVALID_VALUE.
  CUresult free(uint64_t ptr);
  // The allocation containing ptr (cuMemGetAddressRange semantics).
  bool range(uint64_t ptr, uint64_t* base, uint64_t* bytes) const;
  bool contains(uint64_t ptr, uint64_t bytes) const;
  // The app's context id that owns the allocation at ptr (0 if none).
  uint64_t context_of(uint64_t ptr) const;
  // Frees every allocation of a destroyed context.
  void free_context(uint64_t context);
  bool owns_range(uint64_t ptr, uint64_t bytes) const {
    return ptr >= base_ && ptr + bytes >= ptr && ptr + bytes <= base_ + size_;
  }

  // Address space for the app's own VMM reservations (cuMemAddressReserve):
  // also inside the job range, so they too survive a restore.
  CUresult reserve_va(uint64_t bytes, uint64_t alignment, uint64_t hint, uint64_t* out);
  CUresult release_va(uint64_t ptr, uint64_t bytes);
  bool va_reserved(uint64_t ptr, uint64_t bytes) const;

  // Everything still mapped, for cleanup and checkpoints.
  struct Mapping {
    uint64_t va;
    uint64_t bytes;
    CUmemGenericAllocationHandle handle;
    CUdevice device;
  };
  std::vector<Mapping> mappings() const;
  // Unmaps and releases everything (the client is gone).
  void release_all();

  uint64_t live_bytes() const;
  // cuCtxEnablePeerAccess: cuMemAlloc memory of `owner` becomes accessible
  // from `accessor` (every mapping now and later).
  CUresult set_peer_access(CUdevice owner, CUdevice accessor, bool enable);
  // cuMemPoolSetAccess: the devices besides `owner` that may access the pool.
  CUresult set_pool_access(uint64_t pool, CUdevice owner, const std::vector<int>& accessors);
  // Device memory mapped beyond what the allocations would hold on their own
  // (each rounded as a driver rounds cuMemAlloc: 512 B, or 2 MiB from 2 MiB
  // up): slack of the slabs and granules, hidden from cuMemGetInfo.
  uint64_t slack(CUdevice device) const;

 private:
  struct Slab {
    uint64_t va = 0;
    uint32_t block = 0;      // block size of this slab's class
    uint32_t used = 0;       // blocks in use
    std::vector<uint64_t> free_bitmap;
    CUdevice device = 0;
    CUmemGenericAllocationHandle handle = 0;
    uint64_t pool = 0;
  };
  struct Alloc {
    uint64_t bytes;          // as requested
    uint64_t slab;           // slab va, or 0 for a dedicated mapping
    CUmemGenericAllocationHandle handle;  // dedicated mapping only
    uint64_t mapped;         // dedicated mapping: its size
    CUdevice device;
    uint64_t context;
    uint64_t pool;
  };

  CUresult free_locked(uint64_t ptr);
  CUresult grant(uint64_t va, uint64_t bytes, CUdevice owner, uint64_t pool);
  CUresult regrant(uint64_t pool, CUdevice owner);
  CUresult map_new(uint64_t bytes, CUdevice device, uint64_t pool, uint64_t* va, CUmemGenericAllocationHandle* handle);
  void unmap(uint64_t va, uint64_t bytes, CUmemGenericAllocationHandle handle);
  bool take_va(uint64_t bytes, uint64_t alignment, uint64_t* out);
  void give_va(uint64_t va, uint64_t bytes);
  uint64_t granularity(CUdevice device);

  mutable std::mutex mu_;
  uint64_t base_ = 0, size_ = 0;
  std::map<uint64_t, uint64_t> free_va_;        // start -> length
  std::map<uint64_t, Alloc> allocs_;            // base -> allocation
  std::map<uint64_t, Slab> slabs_;              // va -> slab
  std::map<uint32_t, std::vector<uint64_t>> partial_;  // class -> slabs with room
  std::map<uint64_t, uint64_t> app_va_;         // app reservations: start -> length
  std::map<int, uint64_t> granularity_;
  std::map<std::pair<uint64_t, int>, std::vector<int>> access_;  // (pool, owner) -> other devices
};

}  // namespace sing::proxy
