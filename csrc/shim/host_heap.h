// Host memory the app and its proxy share at the same address: everything the
// app gets from cuMemAllocHost, cuMemHostAlloc and cuMemAllocManaged.  A
// kernel in the proxy can dereference it, and copies from it are zero-copy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>

namespace sing::shim {

class HostHeap {
 public:
  // Maps a memfd of `size` bytes at `base` (fails if anything is there) and
  // returns the descriptor to hand to the proxy.
  static bool create(uint64_t base, uint64_t size, int* fd_out);
  // Unmaps it again (the proxy refused the connection).
  static void destroy();
  static HostHeap& get();

  // Page-aligned, zero-filled; null when the range is exhausted.
  void* alloc(size_t size, unsigned kind, unsigned flags);
  struct Block {
    uint64_t base = 0;
    size_t size = 0;
    unsigned kind = 0;   // kPinned or kManaged
    unsigned flags = 0;  // CU_MEMHOSTALLOC_* / CU_MEM_ATTACH_*
  };
  // Removes the block that starts exactly at p.
  bool release(const void* p, Block* out);
  // The block containing [p, p+n), if any.
  bool lookup(const void* p, size_t n, Block* out) const;
  bool overlaps(const void* p, size_t n) const {
    auto a = reinterpret_cast<uint64_t>(p);
    return a < base_ + size_ && a + n > base_;
  }
  bool in_range(const void* p, size_t n) const {
    auto a = reinterpret_cast<uint64_t>(p);
    return a >= base_ && a + n >= a && a + n <= base_ + size_;
  }

  static constexpr unsigned kPinned = 1;
  static constexpr unsigned kManaged = 2;

 private:
  uint64_t base_ = 0;
  uint64_t size_ = 0;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;   // offset -> length, coalesced
  std::map<uint64_t, Block> used_;      // base address -> block
};

}  // namespace sing::shim
