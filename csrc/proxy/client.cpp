#include "client.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backend.h"
#include "dispatch.h"
#include "log.h"
#include "wire/control.h"
#include "wire/futex.h"

namespace sing::proxy {

namespace {
// How long a worker waits for the next record before sleeping: long enough to
// catch a burst of launches without a wake-up syscall each (a Python app
// issues one every few microseconds), without stealing a core from kernels
// running on the simulated device.  It spins briefly, then yields the core
// between looks: spinning all 30 us made examples/train.py ~15% slower than
// direct (the worker held a core through each step's launch burst, which the
// simulator's kernel threads needed), 5 us + yielding ~4-10% (7 alternating
// runs each, session 12); the launch benchmark's submission cost did not
// suffer (300-335 ns against 330-640).
constexpr uint64_t kSpinNs = 5'000;
constexpr uint64_t kYieldNs = 25'000;
// Sleepers wake this often to notice shutdown.
constexpr int64_t kSleepNs = 100'000'000;
}  // namespace

namespace {
std::atomic<int> g_clients{0};
}  // namespace

int client_count() { return g_clients.load(); }

Client::Client(uint32_t id, pid_t pid, int control_fd, std::string job)
    : id_(id), pid_(pid), control_fd_(control_fd), job_(std::move(job)) {
  g_clients.fetch_add(1);
}

Client::~Client() {
  shutdown();
  g_clients.fetch_sub(1);
}

CUresult Client::setup(uint64_t va_base, uint64_t va_size, uint64_t host_base, uint64_t host_size, int host_fd,
                       int* segment_fd, std::string& error, bool* range_busy) {
  *range_busy = false;
  CUresult r = map_host(host_base, host_size, host_fd, error, range_busy);
  if (r == CUDA_SUCCESS) r = reserve_range(va_base, va_size, error, range_busy);
  if (r == CUDA_SUCCESS) r = create_segment(segment_fd, error);
  return r;
}

CUresult Client::map_host(uint64_t host_base, uint64_t host_size, int host_fd, std::string& error,
                          bool* range_busy) {
  void* host = mmap(reinterpret_cast<void*>(host_base), host_size, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, host_fd, 0);
  if (host == MAP_FAILED) {
    error = "the job's host range is in use in this proxy: " + std::string(std::strerror(errno));
    *range_busy = errno == EEXIST;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  host_base_ = host_base;
  host_size_ = host_size;
  return CUDA_SUCCESS;
}

CUresult Client::reserve_range(uint64_t va_base, uint64_t va_size, std::string& error, bool* range_busy) {
  CUdeviceptr got = 0;
  CUresult r = BACKEND(cuMemAddressReserve)(&got, va_size, 0, va_base, 0);
  if (r != CUDA_SUCCESS || got != va_base) {
    if (r == CUDA_SUCCESS) BACKEND(cuMemAddressFree)(got, va_size);
    error = "the job's device range is in use in this proxy";
    *range_busy = true;
    return r == CUDA_SUCCESS ? CUDA_ERROR_OUT_OF_MEMORY : r;
  }
  va_base_ = va_base;
  va_size_ = va_size;
  va_reserved_ = true;
  heap.init(va_base, va_size);
  return CUDA_SUCCESS;
}

CUresult Client::create_segment(int* segment_fd, std::string& error) {
  segment_bytes_ = wire::segment_bytes();
  int fd = memfd_create("singularity-segment", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, off_t(segment_bytes_)) != 0) {
    error = "cannot create the shared segment: " + std::string(std::strerror(errno));
    if (fd >= 0) close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  void* seg = mmap(nullptr, segment_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (seg == MAP_FAILED) {
    error = "cannot map the shared segment";
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  segment_ = static_cast<wire::SegmentHeader*>(seg);
  segment_->magic = wire::kMagic;
  segment_->version = wire::kVersion;
  segment_->num_channels = wire::kMaxChannels;
  segment_->segment_bytes = segment_bytes_;
  segment_->channel_offset = sizeof(wire::SegmentHeader);
  segment_->channel_stride = sizeof(wire::Channel);
  segment_->proxy_pid = getpid();
  segment_->client_id = id_;
  *segment_fd = fd;
  return CUDA_SUCCESS;
}

CUresult Client::open_channel(uint32_t index) {
  if (index >= wire::kMaxChannels) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(workers_mu_);
  if (workers_[index] && !workers_[index]->finished()) return CUDA_ERROR_INVALID_VALUE;
  if (workers_[index]) workers_[index]->stop();
  wire::Channel* ch = wire::channel_at(segment_, index);
  if (ch->state.load() != uint32_t(wire::ChannelState::Claimed)) return CUDA_ERROR_INVALID_VALUE;
  // A reused slot starts over: the app's side starts from zero as well.
  ch->tail.store(0);
  ch->head.store(0);
  ch->worker_sleeping.store(0);
  ch->done_seq.store(UINT32_MAX);
  ch->app_sleeping.store(0);
  ch->stage_released.store(0);
  ch->stage_filled.store(0);
  ch->stage_acked.store(0);
  ch->state.store(uint32_t(wire::ChannelState::Open));
  workers_[index] = std::make_unique<Worker>(*this, index);
  workers_[index]->start();
  // A thread of a restored app gets back the context it had current.
  auto saved = thread_contexts.find(ch->owner_tid);
  if (saved != thread_contexts.end()) {
    uint64_t real;
    if (handles.to_real(HandleKind::Context, saved->second, &real))
      workers_[index]->run_on_thread([real] { BACKEND(cuCtxSetCurrent)(reinterpret_cast<CUcontext>(real)); });
    thread_contexts.erase(saved);
  }
  return CUDA_SUCCESS;
}

CUresult Client::share_host(uint64_t addr, uint64_t bytes, int fd) {
  constexpr uint64_t kPage = 4096;
  if (bytes == 0 || (addr | bytes) % kPage || addr + bytes < addr) return CUDA_ERROR_INVALID_VALUE;
  // Never over the job's own ranges (device addresses, shared host range).
  if (in_host_range(addr, 1) || in_host_range(addr + bytes - 1, 1) ||
      (addr < va_base_ + va_size_ && addr + bytes > va_base_) ||
      (addr < host_base_ + host_size_ && addr + bytes > host_base_))
    return CUDA_ERROR_INVALID_VALUE;
  struct stat st;
  if (fstat(fd, &st) != 0) return CUDA_ERROR_INVALID_VALUE;
  const std::pair<uint64_t, uint64_t> file{uint64_t(st.st_dev), uint64_t(st.st_ino)};
  std::lock_guard<std::mutex> lock(mu);
  auto same = shared_pages.find(addr);
  if (same != shared_pages.end() && same->second == addr + bytes)
    // Shared again after a reattach to this very proxy (a checkpoint that left
    // the app running): already mapped, if from the same memfd.
    return shared_files[addr] == file ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  auto next = shared_pages.lower_bound(addr);
  if ((next != shared_pages.end() && next->first < addr + bytes) ||
      (next != shared_pages.begin() && std::prev(next)->second > addr))
    return CUDA_ERROR_INVALID_VALUE;
  // NOREPLACE: whatever this process has there (another client's pages, the
  // proxy's own memory) stays, and the app gets an error instead.
  void* m = mmap(reinterpret_cast<void*>(addr), bytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED_NOREPLACE | MAP_NORESERVE, fd, 0);
  if (m == MAP_FAILED) {
    log_error("client %u: cannot map registered pages at 0x%llx (%llu bytes): %s", id_,
              static_cast<unsigned long long>(addr), static_cast<unsigned long long>(bytes), std::strerror(errno));
    return errno == EEXIST ? CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED : CUDA_ERROR_OUT_OF_MEMORY;
  }
  shared_pages[addr] = addr + bytes;
  shared_files[addr] = file;
  return register_restored_pages();
}

CUresult Client::register_restored_pages() {
  if (pending_registrations.empty()) return CUDA_SUCCESS;
  AnyClientContext any(*this);
  for (auto it = pending_registrations.begin(); it != pending_registrations.end();) {
    const HostBlock& b = host_blocks.at(*it);
    if (!in_shared_pages(*it, b.bytes)) {
      ++it;
      continue;
    }
    CUresult r = BACKEND(cuMemHostRegister_v2)(reinterpret_cast<void*>(*it), b.bytes, b.flags);
    if (r != CUDA_SUCCESS) {
      log_error("client %u: cannot register the app's memory at 0x%llx (%llu bytes) again", id_,
                static_cast<unsigned long long>(*it), static_cast<unsigned long long>(b.bytes));
      return r;
    }
    it = pending_registrations.erase(it);
  }
  return CUDA_SUCCESS;
}

CUresult Client::unshare_host(uint64_t addr, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu);
  auto it = shared_pages.find(addr);
  if (it == shared_pages.end() || it->second != addr + bytes) return CUDA_ERROR_INVALID_VALUE;
  // Pages still registered with the driver stay mapped.
  for (auto& [base, b] : host_blocks)
    if (b.kind == kRegistered && base < addr + bytes && base + b.bytes > addr) return CUDA_ERROR_INVALID_VALUE;
  munmap(reinterpret_cast<void*>(addr), bytes);
  shared_pages.erase(it);
  shared_files.erase(addr);
  return CUDA_SUCCESS;
}

bool Client::in_shared_pages(uint64_t p, uint64_t n) {
  // Runs may be adjacent: walk them while they cover the range.
  uint64_t at = p;
  auto it = shared_pages.upper_bound(at);
  if (it == shared_pages.begin()) return false;
  --it;
  while (it != shared_pages.end() && it->first <= at && at < it->second) {
    at = it->second;
    if (at >= p + n) return true;
    ++it;
  }
  return false;
}

bool Client::valid_range(uint64_t p, uint64_t n) {
  if (p + n < p) return false;
  if (in_device_range(p, n)) {
    if (heap.contains(p, n)) return true;
    std::lock_guard<std::mutex> lock(mu);
    // App VMM mappings: consecutive mappings may together cover the range.
    uint64_t at = p;
    auto it = app_mappings.upper_bound(at);
    if (it == app_mappings.begin()) return false;
    --it;
    while (it != app_mappings.end() && it->first <= at && at < it->first + it->second.bytes) {
      at = it->first + it->second.bytes;
      if (at >= p + n) return true;
      ++it;
    }
    return false;
  }
  // Any page of the shared host range: it is this client's own memory.
  if (in_host_range(p, n)) return true;
  std::lock_guard<std::mutex> lock(mu);
  // The app's registered pages: while registered, device-addressable.
  for (auto it = host_blocks.upper_bound(p); it != host_blocks.begin();) {
    --it;
    if (it->second.kind == kRegistered && p + n <= it->first + it->second.bytes) return true;
    break;
  }
  auto it = module_globals.upper_bound(p);
  if (it == module_globals.begin()) return false;
  --it;
  return p + n <= it->first + it->second.first;
}

void Client::wait_turn(uint64_t ticket) {
  if (dispatched_.load(std::memory_order_acquire) == ticket) return;
  const uint64_t until = wire::now_ns() + kSpinNs;
  while (wire::now_ns() < until) {
    if (dispatched_.load(std::memory_order_acquire) == ticket) return;
    wire::cpu_relax();
  }
  turn_waiters_.fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    uint32_t seen = dispatch_word_.load(std::memory_order_seq_cst);
    uint64_t d = dispatched_.load(std::memory_order_acquire);
    // A ticket already passed means a hostile or confused client: serve it
    // rather than wait forever.
    if (d >= ticket) break;
    wire::futex_wait(&dispatch_word_, seen, 10'000'000);
    if (segment_ == nullptr) break;
  }
  turn_waiters_.fetch_sub(1, std::memory_order_seq_cst);
}

void Client::pass_turn(uint64_t ticket) {
  uint64_t next = ticket + 1;
  // Only ever forward: a stale or repeated ticket must not move it back.
  uint64_t cur = dispatched_.load(std::memory_order_relaxed);
  while (cur < next && !dispatched_.compare_exchange_weak(cur, next, std::memory_order_acq_rel)) {
  }
  dispatch_word_.store(uint32_t(next), std::memory_order_seq_cst);
  if (turn_waiters_.load(std::memory_order_seq_cst)) wire::futex_wake_all(&dispatch_word_);
}

AnyClientContext::AnyClientContext(Client& c) {
  auto ctxs = c.handles.live(HandleKind::Context);
  pushed_ = !ctxs.empty() &&
            BACKEND(cuCtxPushCurrent_v2)(reinterpret_cast<CUcontext>(ctxs.front().second)) == CUDA_SUCCESS;
}

AnyClientContext::~AnyClientContext() {
  if (pushed_) BACKEND(cuCtxPopCurrent_v2)(nullptr);
}

void Client::forget_image(uint64_t vid) {
  std::lock_guard<std::mutex> lock(mu);
  std::erase_if(module_globals, [&](auto& kv) { return kv.second.second == vid; });
  if (auto it = module_functions.find(vid); it != module_functions.end()) {
    for (uint64_t f : it->second) {
      handles.forget(HandleTable::kind_of(f), f);
      records.functions.erase(f);
      records.kernels.erase(f);
    }
    module_functions.erase(it);
  }
  images.erase(vid);
}

void Client::forget_context_objects(uint64_t ctx) {
  std::vector<uint64_t> modules;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [vid, img] : images)
      if (!img.library && img.ctx == ctx) modules.push_back(vid);
  }
  for (uint64_t m : modules) {
    forget_image(m);
    handles.forget(HandleKind::Module, m);
  }
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = records.streams.begin(); it != records.streams.end();) {
    if (it->second.ctx != ctx) {
      ++it;
      continue;
    }
    handles.forget(HandleKind::Stream, it->first);
    it = records.streams.erase(it);
  }
}

void Client::shutdown() {
  closing.store(true);
  {
    std::lock_guard<std::mutex> lock(workers_mu_);
    for (auto& w : workers_) {
      if (w) w->stop();
      w.reset();  // shutdown runs again from the destructor: nothing left to stop
    }
  }
  release_client_objects(*this);
  heap.release_all();
  if (va_reserved_) BACKEND(cuMemAddressFree)(va_base_, va_size_);
  va_reserved_ = false;
  if (host_size_) munmap(reinterpret_cast<void*>(host_base_), host_size_);
  host_size_ = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [start, end] : shared_pages) munmap(reinterpret_cast<void*>(start), end - start);
    shared_pages.clear();
  }
  if (segment_) munmap(segment_, segment_bytes_);
  segment_ = nullptr;
}

Worker::Worker(Client& client, uint32_t index)
    : client_(client), ch_(wire::channel_at(client.segment(), index)), index_(index), ring_(ch_) {}

Worker::~Worker() { stop(); }

void Worker::start() {
  thread_ = std::thread([this] {
    loop();
    std::lock_guard<std::mutex> lock(task_mu_);
    finished_.store(true);
    task_cv_.notify_all();
  });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  ch_->doorbell.fetch_add(1);
  wire::futex_wake_all(&ch_->doorbell);
  if (thread_.joinable()) thread_.join();
}

bool Worker::next_record(const wire::RecordHeader** rec) {
  uint64_t until = 0;
  for (;;) {
    switch (ring_.peek(rec)) {
      case wire::RingConsumer::Status::Record:
        return true;
      case wire::RingConsumer::Status::Corrupt:
        log_error("client %u channel %u: malformed ring: channel closed", client_.id(), index_);
        return false;
      case wire::RingConsumer::Status::Empty:
        break;
    }
    if (stop_.load(std::memory_order_relaxed)) return false;
    run_task_if_any();
    const uint64_t now = wire::now_ns();
    if (!until) until = now + kSpinNs;
    if (now < until) {
      wire::cpu_relax();
      continue;
    }
    if (now < until + (copy_in_progress ? wire::kCopyYieldNs : kYieldNs)) {
      sched_yield();
      continue;
    }
    uint32_t seen = ch_->doorbell.load(std::memory_order_seq_cst);
    ch_->worker_sleeping.store(1, std::memory_order_seq_cst);
    if (!ring_.has_more() && !stop_.load() && !task_pending_.load()) wire::futex_wait(&ch_->doorbell, seen, kSleepNs);
    ch_->worker_sleeping.store(0, std::memory_order_relaxed);
    until = 0;
  }
}

void Worker::loop() {
  for (;;) {
    const wire::RecordHeader* rec;
    if (!next_record(&rec)) break;
    if (rec->opcode == wire::kOpCloseChannel) {
      client_.wait_turn(rec->ticket);
      client_.pass_turn(rec->ticket);
      ring_.advance();
      ch_->state.store(uint32_t(wire::ChannelState::Free), std::memory_order_release);
      return;
    }
    busy_.store(true, std::memory_order_release);
    handle(rec);
    ring_.advance();
    busy_.store(false, std::memory_order_release);
  }
  ch_->state.store(uint32_t(wire::ChannelState::Closing));
}

void Worker::run_on_thread(const std::function<void()>& task) {
  std::unique_lock<std::mutex> lock(task_mu_);
  task_ = &task;
  task_pending_.store(true, std::memory_order_release);
  ch_->doorbell.fetch_add(1);
  wire::futex_wake_all(&ch_->doorbell);
  task_cv_.wait(lock, [&] { return !task_pending_.load() || finished_.load(); });
}

void Worker::run_task_if_any() {
  if (!task_pending_.load(std::memory_order_acquire)) return;
  std::lock_guard<std::mutex> lock(task_mu_);
  if (task_) (*task_)();
  task_ = nullptr;
  task_pending_.store(false, std::memory_order_release);
  task_cv_.notify_all();
}

void Worker::handle(const wire::RecordHeader* rec) {
  const bool sync = rec->flags & wire::kRecordSync;
  const uint8_t* payload = reinterpret_cast<const uint8_t*>(rec + 1);
  const uint32_t size = rec->length - uint32_t(sizeof(wire::RecordHeader));
  Call call{client_, *this, wire::Reader(payload, size), wire::Writer(ch_->response, wire::kResponseBytes),
            rec->opcode, sync};
  client_.wait_turn(rec->ticket);
  // Anything issued after a sync call was issued after its answer, so the
  // next record may go as soon as this one starts; a fire-and-forget call
  // must be submitted before the next one is.
  if (sync) client_.pass_turn(rec->ticket);
  // A failed fire-and-forget call surfaces as the failure of the thread's
  // next sync call, which then has no effect (as with CUDA's async errors).
  CUresult r;
  if (sync && deferred != CUDA_SUCCESS) {
    r = deferred;
    deferred = CUDA_SUCCESS;
  } else {
    r = dispatch(call);
  }
  if (!sync) client_.pass_turn(rec->ticket);
  if (sync) {
    if (call.out.overflow()) r = CUDA_ERROR_INVALID_VALUE;
    respond(rec->ticket, r, r == CUDA_SUCCESS || call.output_on_error ? call.out.size() : 0);
  } else if (r != CUDA_SUCCESS && deferred == CUDA_SUCCESS) {
    log_debug("client %u: fire-and-forget opcode %u failed (%d), reported on the thread's next sync call",
              client_.id(), unsigned(rec->opcode), int(r));
    deferred = r;
  }
}

void Worker::respond(uint64_t ticket, CUresult r, uint32_t length) {
  ch_->result = int32_t(r);
  ch_->response_length = length;
  CUcontext current = nullptr;
  ch_->has_context = BACKEND(cuCtxGetCurrent)(&current) == CUDA_SUCCESS && current;
  ch_->done_seq.store(uint32_t(ticket), std::memory_order_seq_cst);
  if (ch_->app_sleeping.load(std::memory_order_seq_cst)) wire::futex_wake_all(&ch_->done_seq);
}

}  // namespace sing::proxy
