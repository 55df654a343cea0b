#include "image.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "app_vmm.h"
#include "backend.h"
#include "graph_image.h"
#include "log.h"
#include "pools.h"
#include "translate.h"

namespace sing::proxy {

using json = nlohmann::json;

namespace {

constexpr uint64_t kChunkBytes = 4ull << 20;

std::string hex(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    uint8_t b = static_cast<const uint8_t*>(p)[i];
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

template <class T>
bool unhex(const json& j, T* out) {
  if (!j.is_string()) return false;
  const std::string s = j.get<std::string>();
  if (s.size() != sizeof(T) * 2) return false;
  auto* o = reinterpret_cast<uint8_t*>(out);
  for (size_t i = 0; i < sizeof(T); ++i) o[i] = uint8_t(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return true;
}

// Seconds per step of writing or reading an image, logged as one line (the
// proxy's part of a checkpoint's or restore's time, step by step).
class StepClock {
 public:
  void lap(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    char b[64];
    std::snprintf(b, sizeof(b), "%s%s %.3f s", text_.empty() ? "" : ", ", step,
                  std::chrono::duration<double>(now - t_).count());
    text_ += b;
    t_ = now;
  }
  const char* text() const { return text_.c_str(); }

 private:
  std::chrono::steady_clock::time_point t_ = std::chrono::steady_clock::now();
  std::string text_;
};

// Device <-> host copies for images, from helper threads: the per-thread
// default stream keeps one thread's copies from queueing behind another's
// (the legacy stream serializes them); a backend without it gets the plain
// call.  Every context is synchronized before an image is written, and a
// restored client runs nothing until it is complete, so no ordering against
// other streams is needed.
CUresult copy_dtoh(void* dst, CUdeviceptr src, size_t n) {
  CUresult r = BACKEND(cuMemcpyDtoH_v2_ptds)(dst, src, n);
  return r == CUDA_ERROR_NOT_SUPPORTED ? BACKEND(cuMemcpyDtoH_v2)(dst, src, n) : r;
}
CUresult copy_htod(CUdeviceptr dst, const void* src, size_t n) {
  CUresult r = BACKEND(cuMemcpyHtoD_v2_ptds)(dst, src, n);
  return r == CUDA_ERROR_NOT_SUPPORTED ? BACKEND(cuMemcpyHtoD_v2)(dst, src, n) : r;
}

// Threads copying chunks: $SINGULARITY_IMAGE_THREADS, else one per core, at
// most 4 (past that the memory bus, not the CPU, is the limit).
unsigned image_threads() {
  static const unsigned n = [] {
    const char* v = std::getenv("SINGULARITY_IMAGE_THREADS");
    const long want = v && *v ? std::strtol(v, nullptr, 10) : 0;
    if (want > 0) return unsigned(std::min(want, 64L));
    return std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  }();
  return n;
}

// Runs task(i, buffer) for every i in [0, n) on a few threads, each with the
// caller's current context: copying, hashing and the file system's own work
// (allocating page-cache pages, which dominates on tmpfs) proceed on every
// core instead of one.  Stops at the first failure (its message in `error`).
// `buffer` is a kChunkBytes scratch area per thread, left uninitialized (a
// restore never touches it).
using ChunkTask = std::function<bool(size_t, uint8_t* buffer, std::string&)>;
bool for_each_chunk(size_t n, const ChunkTask& task, std::string& error) {
  const size_t threads = std::min<size_t>(n, image_threads());
  std::unique_ptr<uint8_t[]> buf0(new uint8_t[kChunkBytes]);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i)
      if (!task(i, buf0.get(), error)) return false;
    return true;
  }
  CUcontext ctx = nullptr;
  BACKEND(cuCtxGetCurrent)(&ctx);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  auto run = [&](uint8_t* buf) {
    std::string err;
    for (size_t i; !failed.load() && (i = next.fetch_add(1)) < n;) {
      bool ok = false;
      try {  // (an exception must not end a helper thread: it would end the proxy)
        ok = task(i, buf, err);
      } catch (const std::exception& e) {
        err = e.what();
      }
      if (ok) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.exchange(true)) error = err;
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t)
    helpers.emplace_back([&] {
      if (ctx) BACKEND(cuCtxSetCurrent)(ctx);
      std::unique_ptr<uint8_t[]> buf(new uint8_t[kChunkBytes]);
      run(buf.get());
      BACKEND(cuCtxSetCurrent)(nullptr);
    });
  run(buf0.get());
  for (auto& t : helpers) t.join();
  return !failed.load();
}

// The app's memory in [va, va+bytes) as chunk names.
bool dump_range(ChunkStore& store, uint64_t va, uint64_t bytes, json* chunks, std::string& error) {
  const size_t n = size_t((bytes + kChunkBytes - 1) / kChunkBytes);
  std::vector<std::string> names(n);
  bool ok = for_each_chunk(n, [&](size_t i, uint8_t* buf, std::string& err) {
    const uint64_t off = uint64_t(i) * kChunkBytes, len = std::min(kChunkBytes, bytes - off);
    if (copy_dtoh(buf, va + off, len) != CUDA_SUCCESS) {
      err = "cannot read device memory at " + std::to_string(va + off);
      return false;
    }
    return store.put(buf, len, &names[i], err);
  }, error);
  if (!ok) return false;
  *chunks = json::array();
  for (auto& name : names) chunks->push_back(std::move(name));
  return true;
}

bool fill_range(const ChunkStore& store, uint64_t va, uint64_t bytes, const json& chunks, std::string& error) {
  if (!chunks.is_array() || chunks.size() != (bytes + kChunkBytes - 1) / kChunkBytes) {
    error = "memory at " + std::to_string(va) + ": wrong number of chunks";
    return false;
  }
  for (auto& c : chunks)
    if (!c.is_string()) {
      error = "memory at " + std::to_string(va) + ": a chunk name is not a string";
      return false;
    }
  return for_each_chunk(chunks.size(), [&](size_t i, uint8_t*, std::string& err) {
    const std::string name = chunks[i].get<std::string>();
    MappedChunk data;
    if (!store.map(name, &data, err)) return false;
    const uint64_t off = uint64_t(i) * kChunkBytes, n = std::min(kChunkBytes, bytes - off);
    if (data.size() != n) {
      err = "chunk " + name + " has the wrong size";
      return false;
    }
    if (copy_htod(va + off, data.data(), n) != CUDA_SUCCESS) {
      err = "cannot write device memory at " + std::to_string(va + off);
      return false;
    }
    return true;
  }, error);
}

bool write_file_atomically(const std::string& path, const std::string& text, std::string& error) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && write(fd, text.data(), text.size()) == ssize_t(text.size()) && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot write " + path + ": " + std::strerror(errno);
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

// Exported or imported VMM memory (custom_vmm_share.cpp), still held.
bool holds_shared_memory(Client& c) {
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [vid, a] : c.app_allocations)
    if (a.shared) return true;
  for (auto& [va, mp] : c.app_mappings)
    if (mp.shared) return true;
  return false;
}

// Managed-memory advice (managed_hints.h): proxy state, restored as it was.
json hints_json(const ManagedHints& h) {
  return {{"read_mostly", h.read_mostly},
          {"preferred", {int(h.preferred.type), h.preferred.id}},
          {"accessed_by", h.accessed_by},
          {"last_prefetch", {int(h.last_prefetch.type), h.last_prefetch.id}}};
}

ManagedHints hints_from_json(const json& j) {
  ManagedHints h;
  h.read_mostly = j.at("read_mostly");
  h.preferred = {CUmemLocationType(j.at("preferred").at(0).get<int>()), j.at("preferred").at(1).get<int>()};
  h.accessed_by = j.at("accessed_by");
  h.last_prefetch = {CUmemLocationType(j.at("last_prefetch").at(0).get<int>()), j.at("last_prefetch").at(1).get<int>()};
  return h;
}

CUdevice device_of(CUcontext ctx) {
  CUdevice dev = 0;
  if (BACKEND(cuCtxPushCurrent_v2)(ctx) == CUDA_SUCCESS) {
    BACKEND(cuCtxGetDevice)(&dev);
    BACKEND(cuCtxPopCurrent_v2)(nullptr);
  }
  return dev;
}

}  // namespace

uint64_t image_memory_bytes(Client& c) {
  uint64_t n = 0;
  for (auto& mp : c.heap.mappings()) n += mp.bytes;
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [va, mp] : c.app_mappings) n += mp.bytes;
  for (auto& [start, g] : c.module_globals) n += g.first;
  return n;
}

CUresult write_image(Client& c, const std::string& chunks_dir, const std::string& manifest, ChunkStats* stats,
                     std::string& error) {
  // Objects whose recipe is not recorded yet cannot be recreated: refuse
  // rather than restore something different.
  // (Graphs, executables and user objects: graph_image.h, which refuses what
  // it cannot record.)
  for (auto kind : {HandleKind::LinkState, HandleKind::Array, HandleKind::MipArray, HandleKind::ExtMemory,
                    HandleKind::ExtSemaphore, HandleKind::GreenCtx}) {
    if (!c.handles.live(kind).empty()) {
      error = "the job holds link states, CUDA arrays, external memory or green contexts, which cannot be "
              "checkpointed yet";
      return CUDA_ERROR_NOT_SUPPORTED;
    }
  }
  if (holds_shared_memory(c)) {
    error = "the job shares VMM memory with other processes through POSIX file descriptors "
            "(cuMemExportToShareableHandle/cuMemImportFromShareableHandle): memory that holders outside the "
            "job may use cannot be checkpointed";
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  StepClock clock;
  ChunkStore store(chunks_dir);
  json m;
  m["format"] = kImageFormat;
  m["job"] = c.job();
  m["token"] = c.token();
  m["va_base"] = c.va_base();
  m["va_size"] = c.va_size();
  m["host_base"] = c.host_base();
  m["host_size"] = c.host_size();

  // Contexts: primary ones by device, created ones with their flags.
  json ctxs = json::array();
  for (auto& [vid, real] : c.handles.live(HandleKind::Context)) {
    auto ctx = reinterpret_cast<CUcontext>(real);
    CUdevice dev = device_of(ctx);
    unsigned flags = 0;
    int active = 0;
    bool primary = !c.records.contexts.count(vid);
    if (primary) BACKEND(cuDevicePrimaryCtxGetState)(dev, &flags, &active);
    else flags = c.records.contexts[vid].flags;
    ctxs.push_back({{"vid", vid}, {"device", dev}, {"flags", flags}, {"primary", primary}});
  }
  m["contexts"] = ctxs;
  json threads = json::array();
  c.each_worker([&](Worker& w) {
    CUcontext cur = nullptr;
    w.run_on_thread([&] { BACKEND(cuCtxGetCurrent)(&cur); });
    if (!cur) return;
    const uint64_t vid = reinterpret_cast<uint64_t>(to_app(c, cur));
    threads.push_back({{"tid", w.owner_tid()}, {"ctx", vid}});
    // Also for this proxy: an app left running reattaches with new workers,
    // which must get its threads' contexts back as a restored client does.
    std::lock_guard<std::mutex> lock(c.mu);
    c.thread_contexts[w.owner_tid()] = vid;
  });
  m["threads"] = threads;

  AnyClientContext any(c);
  if (!any.ok() && !c.heap.mappings().empty()) {
    error = "the job has device memory but no context";
    return CUDA_ERROR_INVALID_CONTEXT;
  }
  // The allocator and every mapping of the job's range, contents as chunks.
  DeviceHeap::State st = c.heap.save();
  json heap;
  heap["base"] = st.base;
  heap["size"] = st.size;
  for (auto& a : st.allocs)
    heap["allocs"].push_back({a.va, a.bytes, a.slab, a.mapped, a.device, a.context, a.pool});
  for (auto& s : st.slabs) heap["slabs"].push_back({{"va", s.va}, {"block", s.block}, {"used", s.used},
                                                     {"bitmap", s.bitmap}, {"device", s.device}, {"pool", s.pool}});
  heap["free_va"] = st.free_va;
  heap["app_va"] = st.app_va;
  for (auto& a : st.access) heap["access"].push_back({{"pool", a.pool}, {"owner", a.owner}, {"to", a.accessors}});
  m["heap"] = heap;
  clock.lap("contexts");
  json memory = json::array();
  bool ok = true;
  for (auto& mp : c.heap.mappings()) {
    json chunks;
    if (!(ok = dump_range(store, mp.va, mp.bytes, &chunks, error))) break;
    memory.push_back({{"va", mp.va}, {"bytes", mp.bytes}, {"chunks", chunks}});
  }
  {
    std::lock_guard<std::mutex> lock(c.mu);
    json allocs = json::array(), maps = json::array(), access = json::array(), blocks = json::array();
    for (auto& [vid, a] : c.app_allocations)
      allocs.push_back({{"vid", vid}, {"bytes", a.bytes}, {"prop", hex(&a.prop, sizeof(a.prop))}, {"refs", a.refs}});
    for (auto& [va, mp] : c.app_mappings) {
      maps.push_back({{"va", va}, {"bytes", mp.bytes}, {"offset", mp.offset}, {"handle", mp.handle_vid}});
      json chunks;
      if (ok && (ok = dump_range(store, va, mp.bytes, &chunks, error)))
        memory.push_back({{"va", va}, {"bytes", mp.bytes}, {"chunks", chunks}});
    }
    for (auto& [va, a] : c.records.access) {
      json descs = json::array();
      for (auto& d : a.second) descs.push_back(hex(&d, sizeof(d)));
      access.push_back({{"va", va}, {"bytes", a.first}, {"descs", descs}});
    }
    for (auto& [ptr, b] : c.host_blocks) {
      json block = {{"ptr", ptr}, {"bytes", b.bytes}, {"kind", b.kind}, {"flags", b.flags}};
      if (!b.hints.is_default()) block["hints"] = hints_json(b.hints);
      blocks.push_back(block);
    }
    m["app_vmm"] = {{"allocations", allocs}, {"mappings", maps}, {"access", access}};
    m["host_blocks"] = blocks;
    m["memory"] = memory;

    // Modules and libraries in the order they were loaded (ids grow).
    json images = json::array();
    for (auto& [vid, img] : c.images) {
      if (!ok) break;
      json chunks = json::array();
      for (uint64_t off = 0; off < img.bytes.size() && ok; off += kChunkBytes) {
        std::string name;
        ok = store.put(img.bytes.data() + off, std::min<uint64_t>(kChunkBytes, img.bytes.size() - off), &name, error);
        chunks.push_back(name);
      }
      images.push_back({{"vid", vid}, {"library", img.library}, {"ctx", img.ctx}, {"bytes", img.bytes.size()},
                        {"chunks", chunks}, {"jit", img.jit}, {"lib", img.lib}});
    }
    m["images"] = images;
    json fns = json::array(), kernels = json::array(), kfns = json::array();
    for (auto& [vid, rec] : c.records.functions) {
      uint64_t real;
      if (c.handles.to_real(HandleKind::Function, vid, &real)) fns.push_back({vid, rec.first, rec.second});
    }
    for (auto& [vid, rec] : c.records.kernels) {
      uint64_t real;
      if (c.handles.to_real(HandleKind::Kernel, vid, &real)) kernels.push_back({vid, rec.first, rec.second});
    }
    for (auto& [vid, k] : c.records.kernel_functions) {
      uint64_t real;
      if (c.handles.to_real(HandleKind::Function, vid, &real)) kfns.push_back({vid, k});
    }
    m["functions"] = fns;
    m["kernels"] = kernels;
    m["kernel_functions"] = kfns;
    json globals = json::array();
    for (auto& [start, g] : c.module_globals) {
      json chunks;
      if (ok && (ok = dump_range(store, start, g.first, &chunks, error)))
        globals.push_back({{"start", start}, {"bytes", g.first}, {"owner", g.second},
                           {"name", c.global_names[start]}, {"chunks", chunks}});
    }
    m["globals"] = globals;
    json streams = json::array(), events = json::array(), pools = json::array();
    for (auto& [vid, real] : c.handles.live(HandleKind::Stream)) {
      auto it = c.records.streams.find(vid);
      if (it == c.records.streams.end()) continue;
      streams.push_back({{"vid", vid}, {"flags", it->second.flags}, {"priority", it->second.priority},
                         {"ctx", it->second.ctx}});
    }
    for (auto& [vid, real] : c.handles.live(HandleKind::Event)) {
      auto it = c.records.events.find(vid);
      if (it != c.records.events.end()) events.push_back({{"vid", vid}, {"flags", it->second}});
    }
    for (auto& [vid, p] : c.pools) {
      json retained = json::array();
      for (auto& [bytes, ptr] : p.retained_by_size) retained.push_back({bytes, ptr});
      json access = json::array();
      for (auto& [dev, f] : p.access) access.push_back({dev, int(f)});
      pools.push_back({{"vid", vid}, {"props", hex(&p.props, sizeof(p.props))}, {"threshold", p.release_threshold},
                       {"used", p.used}, {"used_high", p.used_high}, {"reserved_high", p.reserved_high},
                       {"reuse", {p.reuse_follow_event, p.reuse_opportunistic, p.reuse_internal}},
                       {"default", p.is_default}, {"retained", retained}, {"retained_bytes", p.retained},
                       {"access", access}});
    }
    m["streams"] = streams;
    m["events"] = events;
    m["pools"] = pools;
    m["current_pool"] = c.current_pool;
    m["pool_of_alloc"] = c.pool_of_alloc;
  }
  clock.lap("memory and objects");
  if (ok && !save_graph_objects(c, &m, error)) return CUDA_ERROR_NOT_SUPPORTED;
  clock.lap("graphs");
  // Last: reading graphs back can issue ids (nodes the app never asked about).
  m["issued"] = c.handles.issued();
  // (`any` pops its context; an explicit pop here popped it twice.)
  if (!ok) return CUDA_ERROR_UNKNOWN;
  if (!store.sync(error)) return CUDA_ERROR_UNKNOWN;
  clock.lap("syncfs");
  *stats = store.stats();
  if (!write_file_atomically(manifest, m.dump(1), error)) return CUDA_ERROR_UNKNOWN;
  clock.lap("manifest");
  log_info("job '%s': image written (%llu bytes, %llu chunks written): %s", c.job().c_str(),
           static_cast<unsigned long long>(stats->bytes), static_cast<unsigned long long>(stats->chunks_written),
           clock.text());
  return CUDA_SUCCESS;
}

std::unique_ptr<Client> read_image(uint32_t client_id, const std::string& chunks_dir, const std::string& manifest,
                                   std::string& error) {
  StepClock clock;
  json m;
  try {
    std::ifstream f(manifest);
    if (!f) {
      error = "cannot read " + manifest;
      return nullptr;
    }
    m = json::parse(f);
  } catch (const std::exception& e) {
    error = manifest + " is not a valid device image: " + e.what();
    return nullptr;
  }
  try {
    if (m.at("format").get<int>() != kImageFormat) {
      error = "device image format " + std::to_string(m.at("format").get<int>()) + " is not supported (want " +
              std::to_string(kImageFormat) + ")";
      return nullptr;
    }
    ChunkStore store(chunks_dir);
    auto c = std::make_unique<Client>(client_id, 0, -1, m.at("job").get<std::string>());
    bool busy = false;
    CUresult r = c->reserve_range(m.at("va_base"), m.at("va_size"), error, &busy);
    if (r != CUDA_SUCCESS) return nullptr;
    clock.lap("manifest and address range");
    c->restored_host_base = m.at("host_base");
    c->restored_host_size = m.at("host_size");
    c->set_token(m.at("token"));
    auto fail = [&](const std::string& why) {
      error = why;
      return nullptr;
    };

    // Contexts.
    for (auto& x : m.at("contexts")) {
      const int dev = x.at("device");
      const unsigned flags = x.at("flags");
      CUcontext ctx = nullptr;
      if (x.at("primary").get<bool>()) {
        BACKEND(cuDevicePrimaryCtxSetFlags_v2)(dev, flags);
        if (BACKEND(cuDevicePrimaryCtxRetain)(&ctx, dev) != CUDA_SUCCESS)
          return fail("device " + std::to_string(dev) + " of the image does not exist here");
      } else {
        if (BACKEND(cuCtxCreate_v4)(&ctx, nullptr, flags, dev) != CUDA_SUCCESS)
          return fail("cannot create a context on device " + std::to_string(dev));
        BACKEND(cuCtxPopCurrent_v2)(nullptr);
        c->records.contexts[x.at("vid")] = {flags, dev};
      }
      c->handles.restore(x.at("vid"), reinterpret_cast<uint64_t>(ctx));
    }
    for (auto& t : m.at("threads")) c->thread_contexts[t.at("tid")] = t.at("ctx");
    AnyClientContext any(*c);
    if (!any.ok() && !m.at("memory").empty()) return fail("the image has memory but no context");

    // The allocator and its mappings, the app's own VMM objects.
    DeviceHeap::State st;
    const json& h = m.at("heap");
    st.base = h.at("base");
    st.size = h.at("size");
    for (auto& a : h.value("allocs", json::array()))
      st.allocs.push_back({a[0], a[1], a[2], a[3], a[4], a[5], a[6]});
    for (auto& s : h.value("slabs", json::array()))
      st.slabs.push_back({s.at("va"), s.at("block"), s.at("used"), s.at("bitmap").get<std::vector<uint64_t>>(),
                          s.at("device"), s.at("pool")});
    st.free_va = h.at("free_va").get<std::vector<std::pair<uint64_t, uint64_t>>>();
    st.app_va = h.at("app_va").get<std::vector<std::pair<uint64_t, uint64_t>>>();
    for (auto& a : h.value("access", json::array()))
      st.access.push_back({a.at("pool"), a.at("owner"), a.at("to").get<std::vector<int>>()});
    clock.lap("contexts");
    if (c->heap.load(st, error) != CUDA_SUCCESS) return nullptr;
    const json& vmm = m.at("app_vmm");
    for (auto& a : vmm.at("allocations")) {
      CUmemAllocationProp prop;
      if (!unhex(a.at("prop"), &prop)) return fail("a VMM allocation of the image is malformed");
      CUmemGenericAllocationHandle real;
      if (BACKEND(cuMemCreate)(&real, a.at("bytes"), &prop, 0) != CUDA_SUCCESS)
        return fail("cannot allocate the app's VMM memory again");
      c->handles.restore(a.at("vid"), real);
      AppAllocation rec{real, a.at("bytes"), prop};
      rec.refs = a.value("refs", 1u);
      c->app_allocations[a.at("vid")] = rec;
    }
    for (auto& mp : vmm.at("mappings")) {
      auto it = c->app_allocations.find(mp.at("handle"));
      if (it == c->app_allocations.end()) return fail("a VMM mapping of the image names no allocation");
      if (BACKEND(cuMemMap)(mp.at("va"), mp.at("bytes"), mp.at("offset"), it->second.real, 0) != CUDA_SUCCESS)
        return fail("cannot map the app's VMM memory again at its address");
      c->app_mappings[mp.at("va")] = AppMapping{mp.at("bytes"), mp.at("offset"), mp.at("handle")};
    }
    // The backend holds as many references as the app did: none for memory
    // the app released and only maps, more for handles it retained.
    for (auto& [vid, a] : c->app_allocations) {
      const uint32_t refs = a.refs;
      const uint64_t mapped_at = mapping_of(*c, vid);
      if (refs == 0 && !mapped_at) return fail("a released VMM allocation of the image has no mapping");
      if (refs == 0 && BACKEND(cuMemRelease)(a.real) != CUDA_SUCCESS)
        return fail("cannot release the app's released VMM memory again");
      for (uint32_t i = 1; i < refs && mapped_at; ++i) {
        CUmemGenericAllocationHandle again;
        if (BACKEND(cuMemRetainAllocationHandle)(&again, reinterpret_cast<void*>(mapped_at)) != CUDA_SUCCESS)
          return fail("cannot retain the app's VMM memory again");
      }
    }
    for (auto& a : vmm.at("access")) {
      std::vector<CUmemAccessDesc> descs;
      for (auto& d : a.at("descs")) {
        CUmemAccessDesc x;
        if (!unhex(d, &x)) return fail("a VMM access list of the image is malformed");
        descs.push_back(x);
      }
      if (BACKEND(cuMemSetAccess)(a.at("va"), a.at("bytes"), descs.data(), descs.size()) != CUDA_SUCCESS)
        return fail("cannot grant the app's VMM access again");
      c->records.access[a.at("va")] = {a.at("bytes"), descs};
    }
    clock.lap("mappings");
    for (auto& x : m.at("memory"))
      if (!fill_range(store, x.at("va"), x.at("bytes"), x.at("chunks"), error)) return nullptr;
    clock.lap("memory");
    for (auto& b : m.at("host_blocks")) {
      HostBlock block{b.at("bytes"), b.at("kind"), b.at("flags")};
      if (b.contains("hints")) block.hints = hints_from_json(b.at("hints"));
      c->host_blocks[b.at("ptr")] = block;
    }

    // Modules and libraries, then the functions and kernels taken from them.
    for (auto& x : m.at("images")) {
      std::vector<uint8_t> bytes, part;
      for (auto& ch : x.at("chunks")) {
        if (!store.get(ch.get<std::string>(), &part, error)) return nullptr;
        bytes.insert(bytes.end(), part.begin(), part.end());
      }
      if (bytes.size() != x.at("bytes").get<uint64_t>()) return fail("a module image of the checkpoint is truncated");
      Client::Image img;
      img.bytes = bytes;
      img.jit = x.at("jit").get<std::vector<std::pair<uint32_t, uint64_t>>>();
      img.lib = x.at("lib").get<std::vector<std::pair<uint32_t, uint64_t>>>();
      img.library = x.at("library");
      img.ctx = x.at("ctx");
      uint64_t ctx_real;
      bool pushed = c->handles.to_real(HandleKind::Context, img.ctx, &ctx_real) &&
                    BACKEND(cuCtxPushCurrent_v2)(reinterpret_cast<CUcontext>(ctx_real)) == CUDA_SUCCESS;
      // JIT options by value only (logs are not wanted again).
      std::vector<CUjit_option> opts;
      std::vector<void*> vals;
      for (auto& [o, v] : img.jit) {
        if (o == CU_JIT_INFO_LOG_BUFFER || o == CU_JIT_ERROR_LOG_BUFFER || o == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES ||
            o == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES || o == CU_JIT_WALL_TIME)
          continue;
        opts.push_back(CUjit_option(o));
        vals.push_back(reinterpret_cast<void*>(uintptr_t(v)));
      }
      uint64_t real = 0;
      CUresult lr;
      if (img.library) {
        std::vector<CUlibraryOption> lopts;
        std::vector<void*> lvals;
        for (auto& [o, v] : img.lib) {
          lopts.push_back(CUlibraryOption(o));
          lvals.push_back(reinterpret_cast<void*>(uintptr_t(v)));
        }
        CUlibrary lib;
        lr = BACKEND(cuLibraryLoadData)(&lib, bytes.data(), opts.data(), vals.data(), unsigned(opts.size()),
                                        lopts.data(), lvals.data(), unsigned(lopts.size()));
        real = reinterpret_cast<uint64_t>(lib);
      } else {
        CUmodule mod;
        lr = BACKEND(cuModuleLoadDataEx)(&mod, bytes.data(), unsigned(opts.size()), opts.data(), vals.data());
        real = reinterpret_cast<uint64_t>(mod);
      }
      if (pushed) BACKEND(cuCtxPopCurrent_v2)(nullptr);
      if (lr != CUDA_SUCCESS) return fail("a module of the image does not load on this device");
      c->handles.restore(x.at("vid"), real);
      c->images[x.at("vid")] = std::move(img);
    }
    for (auto& f : m.at("functions")) {
      uint64_t mod;
      if (!c->handles.to_real(HandleKind::Module, f[1], &mod)) return fail("a function of the image has no module");
      CUfunction fn;
      const std::string name = f[2];
      if (BACKEND(cuModuleGetFunction)(&fn, reinterpret_cast<CUmodule>(mod), name.c_str()) != CUDA_SUCCESS)
        return fail("function " + name + " is missing from its module");
      c->handles.restore(f[0], reinterpret_cast<uint64_t>(fn));
      c->records.functions[f[0]] = {f[1], name};
      c->module_functions[f[1]].push_back(f[0]);
    }
    for (auto& k : m.at("kernels")) {
      uint64_t lib;
      if (!c->handles.to_real(HandleKind::Library, k[1], &lib)) return fail("a kernel of the image has no library");
      CUkernel kern;
      const std::string name = k[2];
      if (BACKEND(cuLibraryGetKernel)(&kern, reinterpret_cast<CUlibrary>(lib), name.c_str()) != CUDA_SUCCESS)
        return fail("kernel " + name + " is missing from its library");
      c->handles.restore(k[0], reinterpret_cast<uint64_t>(kern));
      c->records.kernels[k[0]] = {k[1], name};
      c->module_functions[k[1]].push_back(k[0]);
    }
    for (auto& kf : m.at("kernel_functions")) {
      uint64_t kern;
      if (!c->handles.to_real(HandleKind::Kernel, kf[1], &kern)) return fail("a kernel function of the image is orphaned");
      CUfunction fn;
      if (BACKEND(cuKernelGetFunction)(&fn, reinterpret_cast<CUkernel>(kern)) != CUDA_SUCCESS)
        return fail("cannot take a function from a kernel of the image");
      c->handles.restore(kf[0], reinterpret_cast<uint64_t>(fn));
      c->records.kernel_functions[kf[0]] = kf[1];
    }
    // Module-scope variables the app asked for: found by name, refilled.
    for (auto& g : m.at("globals")) {
      const std::string name = g.at("name");
      const uint64_t owner = g.at("owner");
      uint64_t real;
      CUdeviceptr p = 0;
      size_t n = 0;
      CUresult gr = CUDA_ERROR_NOT_FOUND;
      if (c->handles.to_real(HandleKind::Module, owner, &real))
        gr = BACKEND(cuModuleGetGlobal_v2)(&p, &n, reinterpret_cast<CUmodule>(real), name.c_str());
      else if (c->handles.to_real(HandleKind::Library, owner, &real))
        gr = BACKEND(cuLibraryGetGlobal)(&p, &n, reinterpret_cast<CUlibrary>(real), name.c_str());
      if (gr != CUDA_SUCCESS || n != g.at("bytes").get<uint64_t>())
        return fail("module variable " + name + " is missing or has another size");
      if (!fill_range(store, p, n, g.at("chunks"), error)) return nullptr;
      if (p != g.at("start").get<uint64_t>())
        log_info("job '%s': module variable %s moved from 0x%llx to 0x%llx (the driver places module data)",
                 c->job().c_str(), name.c_str(), static_cast<unsigned long long>(g.at("start").get<uint64_t>()),
                 static_cast<unsigned long long>(p));
      c->module_globals[p] = {n, owner};
      c->global_names[p] = name;
    }
    // Streams and events, each in its context.
    for (auto& s : m.at("streams")) {
      uint64_t ctx_real;
      bool pushed = c->handles.to_real(HandleKind::Context, s.at("ctx"), &ctx_real) &&
                    BACKEND(cuCtxPushCurrent_v2)(reinterpret_cast<CUcontext>(ctx_real)) == CUDA_SUCCESS;
      CUstream st_;
      CUresult sr = BACKEND(cuStreamCreateWithPriority)(&st_, s.at("flags"), s.at("priority"));
      if (pushed) BACKEND(cuCtxPopCurrent_v2)(nullptr);
      if (sr != CUDA_SUCCESS) return fail("cannot create a stream of the image");
      c->handles.restore(s.at("vid"), reinterpret_cast<uint64_t>(st_));
      c->records.streams[s.at("vid")] = {s.at("flags"), s.at("priority"), s.at("ctx")};
    }
    for (auto& e : m.at("events")) {
      CUevent ev;
      if (BACKEND(cuEventCreate)(&ev, e.at("flags")) != CUDA_SUCCESS) return fail("cannot create an event of the image");
      c->handles.restore(e.at("vid"), reinterpret_cast<uint64_t>(ev));
      c->records.events[e.at("vid")] = e.at("flags");
    }
    // Pools live in the proxy only: their state comes back as it was.
    uint64_t next_pool = 1ull << 40;
    for (auto& p : m.at("pools")) {
      Pool pool;
      if (!unhex(p.at("props"), &pool.props)) return fail("a pool of the image is malformed");
      pool.release_threshold = p.at("threshold");
      pool.used = p.at("used");
      pool.used_high = p.at("used_high");
      pool.reserved_high = p.at("reserved_high");
      pool.reuse_follow_event = p.at("reuse")[0];
      pool.reuse_opportunistic = p.at("reuse")[1];
      pool.reuse_internal = p.at("reuse")[2];
      pool.is_default = p.at("default");
      for (auto& r : p.at("retained")) pool.retained_by_size.emplace(r[0].get<uint64_t>(), r[1].get<uint64_t>());
      pool.retained = p.at("retained_bytes");
      for (auto& a : p.at("access")) pool.access[a[0]] = CUmemAccess_flags(a[1].get<int>());
      c->handles.restore(p.at("vid"), next_pool++);
      c->pools[p.at("vid")] = pool;
    }
    // Graphs and executables after everything their nodes name (functions,
    // events, memory).
    if (!load_graph_objects(*c, m, error)) return nullptr;
    c->current_pool = m.at("current_pool").get<std::map<int, uint64_t>>();
    c->pool_of_alloc = m.at("pool_of_alloc").get<std::map<uint64_t, uint64_t>>();
    c->handles.continue_from(m.at("issued"));
    c->set_detached();
    c->reattachable.store(true);
    clock.lap("objects");
    log_info("job '%s': image read: %s", c->job().c_str(), clock.text());
    return c;
  } catch (const std::exception& e) {
    error = manifest + " is malformed: " + e.what();
    return nullptr;
  }
}

}  // namespace sing::proxy
