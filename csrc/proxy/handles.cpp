#include "handles.h"

namespace sing::proxy {

HandleTable::HandleTable() = default;

const HandleTable::Entry* HandleTable::entry(uint64_t index) const {
  if (index >= count_.load(std::memory_order_acquire)) return nullptr;
  const auto& chunk = chunks_[index / kChunk];
  return chunk ? &chunk[index % kChunk] : nullptr;
}

uint64_t HandleTable::to_vid(HandleKind kind, uint64_t real) {
  std::lock_guard<std::mutex> lock(mu_);
  auto key = std::make_pair(int(kind), real);
  auto it = by_real_.find(key);
  uint64_t index;
  if (it != by_real_.end()) {
    index = it->second;
  } else {
    index = count_.load(std::memory_order_relaxed);
    if (index / kChunk >= kMaxChunks) return 0;
    auto& chunk = chunks_[index / kChunk];
    if (!chunk) chunk.reset(new Entry[kChunk]);
    Entry& e = chunk[index % kChunk];
    e.real.store(real, std::memory_order_relaxed);
    e.kind.store(uint8_t(kind), std::memory_order_relaxed);
    e.alive.store(true, std::memory_order_relaxed);
    count_.store(index + 1, std::memory_order_release);
    by_real_[key] = index;
  }
  return kTag | (uint64_t(kind) << kKindShift) | index;
}

bool HandleTable::to_real(HandleKind kind, uint64_t vid, uint64_t* real) const {
  if ((vid & 0xff00000000000000ull) != kTag || kind_of(vid) != kind) return false;
  const Entry* e = entry(vid & ((1ull << kKindShift) - 1));
  if (!e || !e->alive.load(std::memory_order_acquire) || e->kind.load(std::memory_order_relaxed) != uint8_t(kind))
    return false;
  *real = e->real.load(std::memory_order_relaxed);
  return true;
}

void HandleTable::forget(HandleKind kind, uint64_t vid) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t real;
  if (!to_real(kind, vid, &real)) return;
  auto* e = const_cast<Entry*>(entry(vid & ((1ull << kKindShift) - 1)));
  e->alive.store(false, std::memory_order_release);
  by_real_.erase(std::make_pair(int(kind), real));
}

void HandleTable::rebind(uint64_t vid, uint64_t real) {
  std::lock_guard<std::mutex> lock(mu_);
  auto* e = const_cast<Entry*>(entry(vid & ((1ull << kKindShift) - 1)));
  if (!e) return;
  uint8_t kind = e->kind.load(std::memory_order_relaxed);
  by_real_.erase(std::make_pair(int(kind), e->real.load(std::memory_order_relaxed)));
  e->real.store(real, std::memory_order_relaxed);
  e->alive.store(true, std::memory_order_release);
  by_real_[std::make_pair(int(kind), real)] = vid & ((1ull << kKindShift) - 1);
}

std::vector<std::pair<uint64_t, uint64_t>> HandleTable::live(HandleKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t n = count_.load(std::memory_order_acquire);
  for (uint64_t i = 0; i < n; ++i) {
    const Entry* e = entry(i);
    if (e && e->alive.load() && e->kind.load() == uint8_t(kind))
      out.emplace_back(kTag | (uint64_t(kind) << kKindShift) | i, e->real.load());
  }
  return out;
}

}  // namespace sing::proxy
