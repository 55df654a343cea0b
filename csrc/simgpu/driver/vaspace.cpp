// Address-space reservation and the heap allocators (see vaspace.h).
#include "vaspace.h"

#include <sys/mman.h>

#include <cerrno>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

namespace simgpu {

namespace {
constexpr int kReserveFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
}

uint64_t reserve_va(uint64_t want, uint64_t size, uint64_t align) {
  if (want) {
    void* p = mmap(reinterpret_cast<void*>(want), size, PROT_NONE, kReserveFlags | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != MAP_FAILED) {
      // Kernels before 4.17 ignore the flag and may place it elsewhere.
      if (reinterpret_cast<uint64_t>(p) == want) return want;
      munmap(p, size);
    }
  }
  if (align < 4096) align = 4096;
  uint64_t span = size + align;
  void* p = mmap(nullptr, span, PROT_NONE, kReserveFlags, -1, 0);
  if (p == MAP_FAILED) return 0;
  uint64_t raw = reinterpret_cast<uint64_t>(p);
  uint64_t base = (raw + align - 1) / align * align;
  if (base > raw) munmap(p, base - raw);
  if (raw + span > base + size) munmap(reinterpret_cast<void*>(base + size), raw + span - (base + size));
  return base;
}

bool decommit(uint64_t addr, uint64_t size) {
  return mmap(reinterpret_cast<void*>(addr), size, PROT_NONE, kReserveFlags | MAP_FIXED, -1, 0) != MAP_FAILED;
}

bool commit(uint64_t addr, uint64_t size) {
  return mmap(reinterpret_cast<void*>(addr), size, PROT_READ | PROT_WRITE, kReserveFlags | MAP_FIXED, -1, 0) !=
         MAP_FAILED;
}

void unreserve_va(uint64_t addr, uint64_t size) { munmap(reinterpret_cast<void*>(addr), size); }

void VaAllocator::init(uint64_t base, uint64_t size) {
  base_ = base;
  size_ = size;
  free_.clear();
  free_[base] = size;
}

uint64_t VaAllocator::alloc(uint64_t size, uint64_t align) {
  if (size == 0) return 0;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    uint64_t start = it->first, len = it->second;
    uint64_t a = (start + align - 1) / align * align;
    if (a < start || a - start >= len || len - (a - start) < size) continue;
    free_.erase(it);
    if (a > start) free_[start] = a - start;
    if (a + size < start + len) free_[a + size] = start + len - (a + size);
    return a;
  }
  return 0;
}

bool VaAllocator::alloc_at(uint64_t addr, uint64_t size) {
  if (size == 0 || addr < base_ || addr + size > base_ + size_ || addr + size < addr) return false;
  auto it = free_.upper_bound(addr);
  if (it == free_.begin()) return false;
  --it;
  uint64_t start = it->first, len = it->second;
  if (addr + size > start + len) return false;
  free_.erase(it);
  if (addr > start) free_[start] = addr - start;
  if (addr + size < start + len) free_[addr + size] = start + len - (addr + size);
  return true;
}

void VaAllocator::release(uint64_t addr, uint64_t size) {
  auto next = free_.lower_bound(addr);
  if (next != free_.end() && next->first == addr + size) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == addr) {
      prev->second += size;
      return;
    }
  }
  free_[addr] = size;
}

bool DeviceHeap::init(int ordinal, uint64_t capacity) {
  // VA for twice the memory (fragmentation headroom), at least the slot.
  uint64_t span = kHeapSlot;
  (void)capacity;
  uint64_t base = reserve_va(kHeapBase + uint64_t(ordinal) * kHeapSlot, span, kLargeAlign);
  if (!base) return false;
  va_.init(base, span);
  return true;
}

uint64_t DeviceHeap::alloc(uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t align = size >= kLargeAlign ? kLargeAlign : kAllocAlign;
  uint64_t addr = va_.alloc(size, align);
  if (!addr) return 0;
  if (chunk_refs_.empty()) chunk_refs_.assign(va_.size() / kChunk, 0);
  uint64_t first = (addr - va_.base()) / kChunk, last = (addr + size - 1 - va_.base()) / kChunk;
  // Commit the chunks that had no allocation, in runs, then count.
  for (uint64_t c = first; c <= last;) {
    if (chunk_refs_[c]) {
      ++c;
      continue;
    }
    uint64_t e = c;
    while (e + 1 <= last && chunk_refs_[e + 1] == 0) ++e;
    if (!commit(va_.base() + c * kChunk, (e - c + 1) * kChunk)) {
      // Undo the runs committed so far (their refs are still zero).
      for (uint64_t u = first; u < c; ++u)
        if (chunk_refs_[u] == 0) decommit(va_.base() + u * kChunk, kChunk);
      va_.release(addr, size);
      return 0;
    }
    c = e + 1;
  }
  for (uint64_t c = first; c <= last; ++c) ++chunk_refs_[c];
  return addr;
}

void DeviceHeap::release(uint64_t addr, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t first = (addr - va_.base()) / kChunk, last = (addr + size - 1 - va_.base()) / kChunk;
  // Decommit the chunks left empty, in runs (one syscall per run).
  for (uint64_t c = first; c <= last;) {
    if (--chunk_refs_[c] != 0) {
      ++c;
      continue;
    }
    uint64_t e = c;
    while (e + 1 <= last && chunk_refs_[e + 1] == 1) --chunk_refs_[++e];
    decommit(va_.base() + c * kChunk, (e - c + 1) * kChunk);
    c = e + 1;
  }
  va_.release(addr, size);
}

}  // namespace simgpu
