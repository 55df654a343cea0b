#include "handles.h"

#include <atomic>

namespace sing::shim {

namespace {

constexpr uint64_t kTag = 0x5a00000000000000ull;
constexpr int kKindShift = 40;
constexpr uint64_t kIndexMask = (1ull << kKindShift) - 1;
constexpr size_t kChunk = 1 << 16;
constexpr size_t kChunks = 256;  // 16M ids, as the proxy
std::atomic<std::atomic<uint8_t>*> g_kinds[kChunks];

std::atomic<uint8_t>* slot(uint64_t id, bool create) {
  if ((id & 0xff00000000000000ull) != kTag) return nullptr;
  uint64_t index = id & kIndexMask;
  if (index / kChunk >= kChunks) return nullptr;
  auto& chunk = g_kinds[index / kChunk];
  auto* c = chunk.load(std::memory_order_acquire);
  if (!c) {
    if (!create) return nullptr;
    auto* fresh = new std::atomic<uint8_t>[kChunk]();
    if (chunk.compare_exchange_strong(c, fresh)) c = fresh;
    else delete[] fresh;
  }
  return &c[index % kChunk];
}

uint8_t kind_of(uint64_t id) { return uint8_t((id >> kKindShift) & 0xff); }

}  // namespace

void handle_seen(uint64_t id) {
  if (auto* s = slot(id, true)) s->store(kind_of(id), std::memory_order_release);
}

void handle_gone(uint64_t id) {
  if (auto* s = slot(id, false)) s->store(0, std::memory_order_release);
}

bool handle_valid(wire::HandleKind kind, uint64_t id) {
  if (kind_of(id) != uint8_t(kind)) return false;
  auto* s = slot(id, false);
  return s && s->load(std::memory_order_acquire) == uint8_t(kind);
}

}  // namespace sing::shim
