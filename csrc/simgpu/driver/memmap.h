// Every address range the simulated devices can touch, and the snapshots of
// it that kernel launches run against.
//
// The engine only checks a kernel's accesses against the sorted ranges it is
// given (engine.h: Launch::memory), so what is in a snapshot decides what a
// kernel may dereference: a device's own allocations, its peers' when peer
// access is on, every pinned / mapped / registered / managed host range
// (unified addressing: device pointer == host pointer), and VMM mappings only
// for the devices cuMemSetAccess granted.  Ranges are exact allocation
// bounds, so an off-by-one write past an allocation is an illegal address
// here even where a real GPU's page granularity would let it pass.
#pragma once

#include "core.h"

#include <functional>
#include <map>
#include <optional>
#include <vector>

namespace simgpu {

struct PhysMem;   // vmm.cpp: a cuMemCreate allocation
struct MemPool;   // pools.cpp

enum class MemKind : uint8_t {
  Device,          // cuMemAlloc / pools / module globals / graph allocations
  HostAlloc,       // cuMemAllocHost / cuMemHostAlloc
  HostRegistered,  // cuMemHostRegister
  Managed,         // cuMemAllocManaged
  Vmm,             // one cuMemMap mapping
};

struct MemRange {
  uint64_t base = 0;
  uint64_t size = 0;       // bytes the application asked for
  uint64_t held = 0;       // bytes taken from the heap / mapping (>= size)
  MemKind kind = MemKind::Device;
  int device = -1;         // owning device; -1 for host memory
  const void* ctx = nullptr;  // CUcontext that allocated it (for pointer attributes)
  uint64_t ctx_id = 0;
  unsigned flags = 0;      // host-alloc / register / managed-attach flags
  uint64_t buffer_id = 0;  // unique per allocation, as CU_POINTER_ATTRIBUTE_BUFFER_ID
  bool internal = false;   // module global / graph memory: not the app's to cuMemFree
  MemPool* pool = nullptr; // stream-ordered allocation from this pool
  // VMM mapping: the physical allocation, offset into it, devices granted access.
  std::shared_ptr<PhysMem> phys;
  uint64_t phys_offset = 0;
  uint32_t access_read = 0;   // bit d: device d may read (VMM; pool memory shared by cuMemPoolSetAccess)
  uint32_t access_write = 0;  // bit d: device d may write
  // Managed memory advice (cuMemAdvise / cuMemPrefetchAsync), for cuMemRangeGetAttribute.
  bool read_mostly = false;
  CUmemLocation preferred{CU_MEM_LOCATION_TYPE_INVALID, 0};
  uint32_t accessed_by = 0;    // bit d: device d; bit 31: the host
  CUmemLocation last_prefetch{CU_MEM_LOCATION_TYPE_INVALID, 0};
  bool sync_memops = false;    // CU_POINTER_ATTRIBUTE_SYNC_MEMOPS
};

struct RangeSnapshot {
  std::vector<uint64_t> begin, end;
};

class MemMap {
 public:
  // False if it overlaps an existing range.
  bool insert(MemRange r);
  // Removes the range starting exactly at `base`.
  std::optional<MemRange> erase(uint64_t base);
  // Calls f(range) under the lock for the range containing addr; false if none.
  bool with(uint64_t addr, const std::function<void(MemRange&)>& f);
  // Copy of the range containing addr.
  std::optional<MemRange> find(uint64_t addr) const;
  // True if [addr, addr+len) lies in one range of a kind the device side
  // may address (anything but pageable host memory).
  bool covers(uint64_t addr, uint64_t len) const;
  // Ranges overlapping [addr, addr+len).
  std::vector<MemRange> overlapping(uint64_t addr, uint64_t len) const;
  // Ranges matching a predicate (for context teardown and pool trims).
  std::vector<MemRange> select(const std::function<bool(const MemRange&)>& pred) const;
  void bump() { version_.fetch_add(1, std::memory_order_acq_rel); }

  // What a kernel on `device` may touch; peer_mask bit p = peer access to device p.
  std::shared_ptr<const RangeSnapshot> snapshot(int device, uint32_t peer_mask);

 private:
  mutable std::shared_mutex mu_;
  std::map<uint64_t, MemRange> ranges_;
  std::atomic<uint64_t> version_{1};

  struct Cached {
    uint64_t version = 0;
    int device = -1;
    uint32_t peers = 0;
    std::shared_ptr<const RangeSnapshot> snap;
  };
  std::mutex cache_mu_;
  std::vector<Cached> cache_;
};

MemMap& memmap();

// Allocation serial numbers for CU_POINTER_ATTRIBUTE_BUFFER_ID / MEMORY_BLOCK_ID.
uint64_t next_buffer_id();

}  // namespace simgpu
