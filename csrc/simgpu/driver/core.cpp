// Handle registry, clock and diagnostics.
#include "core.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace simgpu {

std::atomic<bool> g_initialized{false};
std::atomic<bool> g_shutting_down{false};
std::atomic<int> g_kernels_running{0};

void install_exit_guard() {
  std::atexit([] {
    g_shutting_down.store(true, std::memory_order_release);
    // A running kernel finishes in bounded time; do not outlive a hung one.
    for (int i = 0; i < 5000 && g_kernels_running.load(std::memory_order_acquire) > 0; ++i) {
      timespec ts{0, 1000000};
      nanosleep(&ts, nullptr);
    }
  });
}

Registry& registry() {
  // Immortal: stream workers may still look handles up during process exit,
  // after static destructors would have run.
  static Registry* r = new Registry;
  return *r;
}

void Registry::add(const void* handle, std::shared_ptr<Object> obj) {
  Shard& s = shards_[shard_of(handle)];
  std::unique_lock lock(s.mu);
  s.map[handle] = std::move(obj);
}

std::shared_ptr<Object> Registry::remove(const void* handle, Kind kind) {
  Shard& s = shards_[shard_of(handle)];
  std::unique_lock lock(s.mu);
  auto it = s.map.find(handle);
  if (it == s.map.end() || it->second->kind != kind) return nullptr;
  auto obj = std::move(it->second);
  s.map.erase(it);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  return obj;
}

std::shared_ptr<Object> Registry::find_fast(const void* handle, Kind kind) {
  struct Slot {
    const void* handle = nullptr;
    uint64_t epoch = 0;
    std::weak_ptr<Object> obj;
  };
  thread_local Slot slots[16];
  Slot& slot = slots[unsigned(kind) & 15];
  uint64_t e = epoch_.load(std::memory_order_acquire);
  if (handle && slot.handle == handle && slot.epoch == e) {
    if (auto obj = slot.obj.lock()) return obj;
  }
  auto obj = find(handle, kind);
  // Read before the lookup: a removal racing with it leaves a stale epoch, so
  // the entry is never trusted afterwards.
  slot.handle = obj ? handle : nullptr;
  slot.epoch = e;
  slot.obj = obj;
  return obj;
}

std::shared_ptr<Object> Registry::find(const void* handle, Kind kind) const {
  if (!handle) return nullptr;
  const Shard& s = shards_[shard_of(handle)];
  std::shared_lock lock(s.mu);
  auto it = s.map.find(handle);
  if (it == s.map.end() || it->second->kind != kind) return nullptr;
  return it->second;
}

bool Registry::contains(const void* handle, Kind kind) const {
  if (!handle) return false;
  const Shard& s = shards_[shard_of(handle)];
  std::shared_lock lock(s.mu);
  auto it = s.map.find(handle);
  return it != s.map.end() && it->second->kind == kind;
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ULL + uint64_t(ts.tv_nsec);
}

void debug_log(const char* fmt, ...) {
  static const bool on = [] {
    const char* v = std::getenv("SINGULARITY_SIM_DEBUG");
    return v && *v && *v != '0';
  }();
  if (!on) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "[simgpu] %s\n", buf);
}

}  // namespace simgpu
