// The simulated GPU's address space: a device address IS a host virtual
// address of this process.
//
// Layout (fixed and deterministic, so that a run reproduces its addresses):
//
//   0x2000'0000'0000 + d * 1 TiB   device d's heap: cuMemAlloc, pools, module
//                                  globals (d < 16; only configured devices
//                                  are reserved)
//   0x3000'0000'0000 .. +16 TiB    cuMemAddressReserve without a fixed address
//
// Why not 0x6000'0000'0000: AddressSanitizer's allocator lives there and the
// native tests run under ASan.  0x2000.. to 0x5000.. is free both in normal
// processes (PIE and heap sit at 0x55.., libraries at 0x7f..) and under ASan
// (its shadow ends at 0x1000'7fff'7fff).  Each region is reserved PROT_NONE
// with MAP_FIXED_NOREPLACE; if something already occupies it, the kernel picks
// the base instead (addresses then differ between runs, nothing else).
//
// Memory behind heap allocations is committed in 2 MiB chunks (anonymous,
// MAP_NORESERVE: pages cost nothing until touched) and decommitted when the
// last allocation in a chunk goes, which also makes a stale pointer fault.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

namespace simgpu {

constexpr uint64_t kHeapBase = 0x2000'0000'0000ULL;
constexpr uint64_t kHeapSlot = 1ULL << 40;
constexpr uint64_t kVmmBase = 0x3000'0000'0000ULL;
constexpr uint64_t kVmmSize = 16ULL << 40;
constexpr uint64_t kChunk = 2ULL << 20;        // commit granularity; also the VMM granularity
constexpr uint64_t kAllocAlign = 512;          // what cuMemAlloc guarantees on this "GPU"
constexpr uint64_t kLargeAlign = 2ULL << 20;   // allocations >= 2 MiB are 2 MiB aligned, as on a GPU

// Reserves [want, want+size) PROT_NONE if free, else anywhere (aligned to
// `align`).  Returns 0 on failure.
uint64_t reserve_va(uint64_t want, uint64_t size, uint64_t align);
// Puts [addr, addr+size) back to PROT_NONE (drops its memory), keeping the reservation.
bool decommit(uint64_t addr, uint64_t size);
// Makes [addr, addr+size) fresh zeroed read-write anonymous memory.
bool commit(uint64_t addr, uint64_t size);
// Releases the reservation itself.
void unreserve_va(uint64_t addr, uint64_t size);

// First-fit allocator over one address range (no memory behind it).
class VaAllocator {
 public:
  void init(uint64_t base, uint64_t size);
  uint64_t base() const { return base_; }
  uint64_t size() const { return size_; }
  bool contains(uint64_t addr) const { return addr >= base_ && addr - base_ < size_; }
  // 0 when no free range fits.
  uint64_t alloc(uint64_t size, uint64_t align);
  // Claims exactly [addr, addr+size) if all of it is free.
  bool alloc_at(uint64_t addr, uint64_t size);
  void release(uint64_t addr, uint64_t size);

 private:
  uint64_t base_ = 0, size_ = 0;
  std::map<uint64_t, uint64_t> free_;  // start -> length, disjoint, coalesced
};

// One device's heap: VA from its slot, memory committed per chunk.
class DeviceHeap {
 public:
  bool init(int ordinal, uint64_t capacity);
  // Returns 0 when out of VA or commit fails; the caller enforces the
  // device's memory size.  `size` is rounded by the caller.
  uint64_t alloc(uint64_t size);
  void release(uint64_t addr, uint64_t size);
  bool contains(uint64_t addr) const { return va_.contains(addr); }

 private:
  std::mutex mu_;
  VaAllocator va_;
  std::vector<uint32_t> chunk_refs_;  // allocations touching each chunk
};

}  // namespace simgpu
