#include "functions.h"

#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "call.h"
#include "wire/control.h"
#include "wire/payloads.h"

namespace sing::shim {

namespace {

// Ids are dense per kind: a two-level table indexed by the id's low bits is
// read without a lock on every launch.
constexpr uint64_t kIndexMask = (1ull << 40) - 1;
constexpr size_t kChunk = 4096;
constexpr size_t kChunks = 4096;
std::atomic<std::atomic<FunctionInfo*>*> g_table[kChunks];
std::mutex g_mu;
std::unordered_map<uint64_t, std::vector<uint64_t>> g_by_module;

std::atomic<FunctionInfo*>* slot(uint64_t fn, bool create) {
  uint64_t index = fn & kIndexMask;
  if (index / kChunk >= kChunks) return nullptr;
  auto& chunk = g_table[index / kChunk];
  auto* c = chunk.load(std::memory_order_acquire);
  if (!c) {
    if (!create) return nullptr;
    auto* fresh = new std::atomic<FunctionInfo*>[kChunk]();
    if (chunk.compare_exchange_strong(c, fresh)) c = fresh;
    else delete[] fresh;
  }
  return &c[index % kChunk];
}

}  // namespace

FunctionInfo* function_info(uint64_t fn, CUresult* error) {
  auto* s = slot(fn, true);
  if (!s) {
    *error = CUDA_ERROR_INVALID_HANDLE;
    return nullptr;
  }
  // The proxy issues every id of a client from one counter, so an index
  // names one handle; the full id guards against garbage with equal low bits.
  FunctionInfo* info = s->load(std::memory_order_acquire);
  if (info && info->id == fn) {
    if (!info->alive.load(std::memory_order_relaxed)) {
      *error = CUDA_ERROR_INVALID_HANDLE;
      return nullptr;
    }
    return info;
  }
  Answer a = sync_call(wire::kOpFunctionInfo, [&](wire::Writer& w) { w.put<uint64_t>(fn); });
  if (a.result != CUDA_SUCCESS) {
    *error = a.result;
    return nullptr;
  }
  wire::Reader r = a.reader();
  auto fi = r.get<wire::FunctionInfo>();
  auto* fresh = new FunctionInfo();
  fresh->id = fn;
  fresh->param_bytes = fi.param_bytes;
  fresh->max_threads = fi.max_threads;
  fresh->max_dynamic_shared.store(fi.max_dynamic_shared);
  for (uint32_t i = 0; i < fi.num_params && r.ok(); ++i) {
    uint32_t off = r.get<uint32_t>();
    uint32_t size = r.get<uint32_t>();
    fresh->params.emplace_back(off, size);
  }
  if (!r.ok()) {
    delete fresh;
    *error = CUDA_ERROR_INVALID_HANDLE;
    return nullptr;
  }
  // Infos are never freed: a racing launch may still read the old one.
  s->store(fresh, std::memory_order_release);
  return fresh;
}

void function_owned_by(uint64_t fn, uint64_t module) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_by_module[module].push_back(fn);
}

void functions_unloaded(uint64_t module) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_by_module.find(module);
  if (it == g_by_module.end()) return;
  for (uint64_t fn : it->second) {
    auto* s = slot(fn, false);
    FunctionInfo* info = s ? s->load() : nullptr;
    if (info && info->id == fn) info->alive.store(false);
  }
  g_by_module.erase(it);
}

}  // namespace sing::shim
