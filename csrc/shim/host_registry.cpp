#include "host_registry.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "connection.h"
#include "log.h"

namespace sing::shim {

namespace {

constexpr uint64_t kPage = 4096;
uint64_t page_down(uint64_t a) { return a & ~(kPage - 1); }
uint64_t page_up(uint64_t a) { return (a + kPage - 1) & ~(kPage - 1); }

// Moves [start, end) of this process onto a new memfd, contents preserved.
// Returns the descriptor (the caller closes it), -1 on failure with errno.
int move_to_memfd(uint64_t start, uint64_t end) {
  const uint64_t len = end - start;
  int fd = memfd_create("singularity-registered", MFD_CLOEXEC);
  if (fd < 0) return -1;
  if (ftruncate(fd, off_t(len)) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  // pwrite reads the app's pages through the kernel: an unmapped page is
  // EFAULT here instead of a crash.
  for (uint64_t off = 0; off < len;) {
    ssize_t n = pwrite(fd, reinterpret_cast<const void*>(start + off), len - off, off_t(off));
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(fd);
      errno = e;
      return -1;
    }
    off += uint64_t(n);
  }
  void* m = mmap(reinterpret_cast<void*>(start), len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  // As a driver does with pinned memory: a forked child does not get these
  // pages (it would share them with the parent instead of copying them).
  madvise(m, len, MADV_DONTFORK);
  return fd;
}

}  // namespace

HostRegistry& HostRegistry::get() {
  static auto* r = new HostRegistry();  // immortal: atexit order is unknown
  return *r;
}

bool HostRegistry::overlaps(uint64_t p, uint64_t bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regs_.lower_bound(p + bytes);
  if (it == regs_.begin()) return false;
  --it;
  return it->first + it->second.first > p;
}

bool HostRegistry::contains(uint64_t p, uint64_t bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regs_.upper_bound(p);
  if (it == regs_.begin()) return false;
  --it;
  return p + bytes <= it->first + it->second.first;
}

CUresult HostRegistry::share(Connection* conn, uint64_t p, uint64_t bytes) {
  const uint64_t start = page_down(p), end = page_up(p + bytes);
  std::lock_guard<std::mutex> lock(mu_);
  // The gaps between runs already shared get runs of their own.
  std::vector<std::pair<uint64_t, uint64_t>> gaps;
  uint64_t at = start;
  auto it = runs_.upper_bound(start);
  if (it != runs_.begin() && std::prev(it)->second.end > start) --it;
  for (; it != runs_.end() && it->first < end; ++it) {
    if (it->first > at) gaps.emplace_back(at, it->first);
    at = std::max(at, it->second.end);
  }
  if (at < end) gaps.emplace_back(at, end);
  std::vector<std::pair<uint64_t, uint64_t>> made;
  CUresult result = CUDA_SUCCESS;
  for (auto [s, e] : gaps) {
    int fd = move_to_memfd(s, e);
    if (fd < 0) {
      log_debug("cannot share registered pages 0x%llx-0x%llx: %s", static_cast<unsigned long long>(s),
                static_cast<unsigned long long>(e), std::strerror(errno));
      result = CUDA_ERROR_INVALID_VALUE;  // as a driver refuses memory it cannot pin
      break;
    }
    result = conn->share_host(s, e - s, fd);
    if (result != CUDA_SUCCESS) {
      close(fd);
      break;
    }
    runs_[s] = Run{e, 0, fd};
    made.emplace_back(s, e);
  }
  if (result != CUDA_SUCCESS) {
    for (auto [s, e] : made) {
      conn->unshare_host(s, e - s);
      close(runs_[s].fd);
      runs_.erase(s);
    }
    return result;
  }
  // Every run the range touches is now referenced once more.
  auto r = runs_.upper_bound(start);
  if (r != runs_.begin() && std::prev(r)->second.end > start) --r;
  for (; r != runs_.end() && r->first < end; ++r) ++r->second.refs;
  return CUDA_SUCCESS;
}

void HostRegistry::commit(uint64_t p, uint64_t bytes, unsigned flags) {
  std::lock_guard<std::mutex> lock(mu_);
  regs_[p] = {bytes, flags};
}

void HostRegistry::unref_runs(Connection* conn, uint64_t p, uint64_t bytes) {
  const uint64_t start = page_down(p), end = page_up(p + bytes);
  auto r = runs_.upper_bound(start);
  if (r != runs_.begin() && std::prev(r)->second.end > start) --r;
  while (r != runs_.end() && r->first < end) {
    if (--r->second.refs == 0) {
      // The app keeps the pages (still memfd-backed); only the proxy lets go.
      conn->unshare_host(r->first, r->second.end - r->first);
      close(r->second.fd);
      r = runs_.erase(r);
    } else {
      ++r;
    }
  }
}

void HostRegistry::share_again(Connection* conn) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [start, run] : runs_) {
    CUresult r = conn->share_host(start, run.end - start, run.fd);
    if (r != CUDA_SUCCESS)
      log_error("cannot share registered pages 0x%llx-0x%llx with the proxy again (error %d): kernels reading them "
                "will fail", static_cast<unsigned long long>(start), static_cast<unsigned long long>(run.end), int(r));
  }
}

void HostRegistry::rollback(Connection* conn, uint64_t p, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  unref_runs(conn, p, bytes);
}

bool HostRegistry::release(Connection* conn, uint64_t p) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = regs_.find(p);
  if (it == regs_.end()) return false;
  const uint64_t bytes = it->second.first;
  regs_.erase(it);
  unref_runs(conn, p, bytes);
  return true;
}

}  // namespace sing::shim
