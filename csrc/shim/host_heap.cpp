#include "host_heap.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log.h"

namespace sing::shim {

namespace {
HostHeap g_heap;
constexpr uint64_t kPage = 4096;
}  // namespace

HostHeap& HostHeap::get() { return g_heap; }

bool HostHeap::create(uint64_t base, uint64_t size, int* fd_out) {
  int fd = memfd_create("singularity-host", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, off_t(size)) != 0) {
    log_error("cannot create shared host memory: %s", std::strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  void* p = mmap(reinterpret_cast<void*>(base), size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    log_error("cannot map shared host memory at 0x%llx: %s", static_cast<unsigned long long>(base),
              std::strerror(errno));
    close(fd);
    return false;
  }
  std::lock_guard<std::mutex> lock(g_heap.mu_);
  g_heap.base_ = base;
  g_heap.size_ = size;
  g_heap.fd_ = fd;
  g_heap.free_.clear();
  g_heap.free_[0] = size;
  *fd_out = fd;
  return true;
}

void HostHeap::destroy() {
  std::lock_guard<std::mutex> lock(g_heap.mu_);
  if (g_heap.size_) munmap(reinterpret_cast<void*>(g_heap.base_), g_heap.size_);
  g_heap.base_ = g_heap.size_ = 0;
  g_heap.free_.clear();
  g_heap.used_.clear();
}

void* HostHeap::alloc(size_t size, unsigned kind, unsigned flags) {
  if (size == 0) return nullptr;
  uint64_t need = (uint64_t(size) + kPage - 1) & ~(kPage - 1);
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    uint64_t off = it->first;
    uint64_t rest = it->second - need;
    free_.erase(it);
    if (rest) free_[off + need] = rest;
    Block b{base_ + off, size_t(need), kind, flags};
    used_[b.base] = b;
    return reinterpret_cast<void*>(b.base);
  }
  return nullptr;
}

bool HostHeap::release(const void* p, Block* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = used_.find(reinterpret_cast<uint64_t>(p));
  if (it == used_.end()) return false;
  Block b = it->second;
  used_.erase(it);
  // Give the pages back, so the next allocation starts zeroed like a fresh
  // cuMemAllocHost and the memory is not held twice.
  fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(b.base - base_), off_t(b.size));
  uint64_t off = b.base - base_, len = b.size;
  auto next = free_.lower_bound(off);
  if (next != free_.end() && off + len == next->first) {
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      prev->second += len;
      if (out) *out = b;
      return true;
    }
  }
  free_[off] = len;
  if (out) *out = b;
  return true;
}

bool HostHeap::lookup(const void* p, size_t n, Block* out) const {
  auto a = reinterpret_cast<uint64_t>(p);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = used_.upper_bound(a);
  if (it == used_.begin()) return false;
  --it;
  const Block& b = it->second;
  if (a < b.base || a + n > b.base + b.size) return false;
  if (out) *out = b;
  return true;
}

}  // namespace sing::shim
