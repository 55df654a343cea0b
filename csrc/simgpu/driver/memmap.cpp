// The registry of device-addressable ranges (see memmap.h).
#include "memmap.h"

namespace simgpu {

MemMap& memmap() {
  // Immortal: stream workers may still consult it while the process exits.
  static MemMap* m = new MemMap;
  return *m;
}

uint64_t next_buffer_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

bool MemMap::insert(MemRange r) {
  std::unique_lock lock(mu_);
  auto next = ranges_.lower_bound(r.base);
  if (next != ranges_.end() && next->first < r.base + r.size) return false;
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.size > r.base) return false;
  }
  ranges_.emplace_hint(next, r.base, std::move(r));
  version_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

std::optional<MemRange> MemMap::erase(uint64_t base) {
  std::unique_lock lock(mu_);
  auto it = ranges_.find(base);
  if (it == ranges_.end()) return std::nullopt;
  MemRange r = std::move(it->second);
  ranges_.erase(it);
  version_.fetch_add(1, std::memory_order_acq_rel);
  return r;
}

bool MemMap::with(uint64_t addr, const std::function<void(MemRange&)>& f) {
  std::unique_lock lock(mu_);
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return false;
  --it;
  if (addr - it->first >= it->second.size) return false;
  f(it->second);
  version_.fetch_add(1, std::memory_order_acq_rel);
  return true;
}

std::optional<MemRange> MemMap::find(uint64_t addr) const {
  std::shared_lock lock(mu_);
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return std::nullopt;
  --it;
  if (addr - it->first >= it->second.size) return std::nullopt;
  return it->second;
}

bool MemMap::covers(uint64_t addr, uint64_t len) const {
  std::shared_lock lock(mu_);
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return false;
  --it;
  uint64_t off = addr - it->first;
  return off < it->second.size && len <= it->second.size - off;
}

std::vector<MemRange> MemMap::overlapping(uint64_t addr, uint64_t len) const {
  std::vector<MemRange> out;
  std::shared_lock lock(mu_);
  auto it = ranges_.upper_bound(addr);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && it->first < addr + len; ++it)
    if (it->first + it->second.size > addr) out.push_back(it->second);
  return out;
}

std::vector<MemRange> MemMap::select(const std::function<bool(const MemRange&)>& pred) const {
  std::vector<MemRange> out;
  std::shared_lock lock(mu_);
  for (auto& [b, r] : ranges_)
    if (pred(r)) out.push_back(r);
  return out;
}

std::shared_ptr<const RangeSnapshot> MemMap::snapshot(int device, uint32_t peers) {
  uint64_t v = version_.load(std::memory_order_acquire);
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    for (auto& c : cache_)
      if (c.device == device && c.peers == peers && c.version == v) return c.snap;
  }
  auto snap = std::make_shared<RangeSnapshot>();
  {
    std::shared_lock lock(mu_);
    v = version_.load(std::memory_order_acquire);
    snap->begin.reserve(ranges_.size());
    snap->end.reserve(ranges_.size());
    const uint32_t me = 1u << device;
    for (auto& [b, r] : ranges_) {
      bool ok = false;
      switch (r.kind) {
        case MemKind::Device:
          // Own memory, a peer's with peer access on, or pool memory granted by cuMemPoolSetAccess.
          ok = r.device == device || (r.device >= 0 && (peers & (1u << r.device))) || (r.access_read & me);
          break;
        case MemKind::HostAlloc:
        case MemKind::HostRegistered:
        case MemKind::Managed: ok = true; break;
        case MemKind::Vmm: ok = (r.access_read & me) != 0; break;
      }
      if (!ok) continue;
      // Merge touching ranges: fewer entries for the engine to search.
      if (!snap->end.empty() && snap->end.back() == r.base)
        snap->end.back() = r.base + r.size;
      else {
        snap->begin.push_back(r.base);
        snap->end.push_back(r.base + r.size);
      }
    }
  }
  std::lock_guard<std::mutex> lock(cache_mu_);
  for (auto& c : cache_) {
    if (c.device == device && c.peers == peers) {
      if (c.version <= v) {
        c.version = v;
        c.snap = snap;
      }
      return snap;
    }
  }
  cache_.push_back({v, device, peers, snap});
  return snap;
}

}  // namespace simgpu
