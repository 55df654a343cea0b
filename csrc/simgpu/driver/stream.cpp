// Stream queues, workers and CUDA's implicit ordering rules (see stream.h).
#include "stream.h"

#include "capture.h"

#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#define SIM_PAUSE() _mm_pause()
#else
#define SIM_PAUSE() ((void)0)
#endif

namespace simgpu {

namespace {
std::atomic<uint64_t> g_next_stream_id{1};
}

Stream::~Stream() = default;

uint64_t Stream::enqueue(Work&& w) {
  std::unique_lock lock(mu_);
  if (queue_.size() >= kMaxQueued && worker_started_ && !worker_idle_) {
    ++space_waiters_;
    space_cv_.wait(lock, [&] { return queue_.size() < kMaxQueued || closing_; });
    --space_waiters_;
  }
  queue_.push(std::move(w));
  uint64_t seq = ++next_seq_;
  submitted_.store(seq, std::memory_order_release);
  if (!worker_started_) {
    worker_started_ = true;
    // The worker holds a reference until it has drained a closed stream.
    auto self = shared_from_this();
    std::thread(&Stream::worker_main, this, std::move(self)).detach();
  } else if (worker_idle_) {
    work_cv_.notify_one();
  }
  return seq;
}

uint64_t Stream::enqueue_all(std::vector<Work>& ws) {
  std::unique_lock lock(mu_);
  for (auto& w : ws) {
    queue_.push(std::move(w));
    ++next_seq_;
  }
  submitted_.store(next_seq_, std::memory_order_release);
  if (!worker_started_) {
    worker_started_ = true;
    auto self = shared_from_this();
    std::thread(&Stream::worker_main, this, std::move(self)).detach();
  } else if (worker_idle_) {
    work_cv_.notify_one();
  }
  return next_seq_;
}

void Stream::worker_main(std::shared_ptr<Stream> self) {
  std::unique_lock lock(mu_);
  for (;;) {
    while (queue_.empty() && !closing_) {
      worker_idle_ = true;
      work_cv_.wait(lock);
    }
    worker_idle_ = false;
    if (queue_.empty()) break;  // closing and drained
    Work w = queue_.pop();
    if (space_waiters_) space_cv_.notify_all();
    lock.unlock();
    CUresult st = ctx->sticky.load(std::memory_order_acquire);
    if (g_shutting_down.load(std::memory_order_acquire)) {
      // Exiting: the work is dropped, not run (see core.h).
    } else if (st != CUDA_SUCCESS) {
      abandon(w, *this, st);
    } else {
      execute(w, *this);
    }
    w = Work{};  // release what the work held before signalling completion
    lock.lock();
    completed_.fetch_add(1, std::memory_order_acq_rel);
    if (done_waiters_) done_cv_.notify_all();
  }
  worker_started_ = false;
  lock.unlock();
  // Closed and drained: the context stops waiting for it.
  ctx->forget_stream(this);
  // `self` goes here: the stream may be freed now.
}

void Stream::wait(uint64_t seq) {
  if (completed() >= seq) return;
  for (int i = 0; i < 256; ++i) {  // ~10-30 us: short work finishes within; longer waits sleep
    SIM_PAUSE();
    if (completed() >= seq) return;
  }
  std::unique_lock lock(mu_);
  ++done_waiters_;
  done_cv_.wait(lock, [&] { return completed() >= seq; });
  --done_waiters_;
}

void Stream::close() {
  std::unique_lock lock(mu_);
  closing_ = true;
  if (worker_started_) {
    work_cv_.notify_one();
    return;
  }
  lock.unlock();
  ctx->forget_stream(this);
}

bool Stream::try_inline(Work& w) {
  if (!idle() || capturing.load(std::memory_order_acquire)) return false;
  CUresult st = ctx->sticky.load(std::memory_order_acquire);
  if (st != CUDA_SUCCESS)
    abandon(w, *this, st);
  else
    execute(w, *this);
  return true;
}

std::shared_ptr<Stream> new_stream(Context& c, Stream::Type type, unsigned flags, int priority) {
  auto s = std::make_shared<Stream>();
  s->ctx = c.shared_from_this();
  s->ctx_id = c.id.load();
  s->type = type;
  s->flags = flags;
  s->priority = priority;
  s->id = g_next_stream_id.fetch_add(1, std::memory_order_relaxed);
  if (type != Stream::Type::Legacy) {
    std::lock_guard<std::mutex> lock(c.mu);
    c.streams.push_back(s);
  }
  if (type != Stream::Type::PerThread) registry().add(s.get(), s);
  return s;
}

std::shared_ptr<Stream> legacy_stream(Context& c) {
  std::unique_lock lock(c.mu);
  if (c.null_stream) return c.null_stream;
  lock.unlock();
  auto s = std::make_shared<Stream>();
  s->ctx = c.shared_from_this();
  s->ctx_id = c.id.load();
  s->type = Stream::Type::Legacy;
  s->id = g_next_stream_id.fetch_add(1, std::memory_order_relaxed);
  lock.lock();
  if (!c.null_stream) c.null_stream = s;
  return c.null_stream;
}

std::shared_ptr<Stream> per_thread_stream(Context& c) {
  auto& map = tls().ptds;
  uint64_t id = c.id.load(std::memory_order_acquire);
  auto it = map.find(&c);
  if (it != map.end() && it->second.ctx_id == id) return it->second.stream;
  auto s = new_stream(c, Stream::Type::PerThread, CU_STREAM_DEFAULT, kLeastPriority);
  map[&c] = {id, s};
  return s;
}

namespace {

CUresult resolve(CUstream h, bool ptds, bool sticky_fails, std::shared_ptr<Stream>& out) {
  if (h == nullptr || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
    Context* c;
    SIM_CHECK(sticky_fails ? current_context(&c) : current_context_nosticky(&c));
    bool per_thread = h == CU_STREAM_PER_THREAD || (h == nullptr && ptds);
    out = per_thread ? per_thread_stream(*c) : legacy_stream(*c);
    return CUDA_SUCCESS;
  }
  SIM_CHECK(check_init());
  if (tls().in_host_callback) return CUDA_ERROR_NOT_PERMITTED;
  out = registry().get_fast<Stream>(h, Kind::Stream);
  if (!out) return CUDA_ERROR_INVALID_HANDLE;
  if (!out->ctx->alive.load(std::memory_order_acquire)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  if (sticky_fails) SIM_CHECK(out->ctx->sticky.load(std::memory_order_acquire));
  return CUDA_SUCCESS;
}

// The waits a submission to `s` implies (legacy stream semantics).
void implicit_waits(Stream& s, std::vector<Work>& out) {
  Context& c = *s.ctx;
  if (s.type == Stream::Type::Legacy) {
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto& b : c.streams) {
      if (!b->blocking()) continue;
      uint64_t seq = b->submitted();
      if (b->completed() < seq) out.push_back(WaitWork{b, seq});
    }
  } else if (s.blocking()) {
    std::shared_ptr<Stream> n;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      n = c.null_stream;
    }
    if (n) {
      uint64_t seq = n->submitted();
      if (n->completed() < seq) out.push_back(WaitWork{n, seq});
    }
  }
}

}  // namespace

CUresult resolve_stream(CUstream h, bool ptds, std::shared_ptr<Stream>& out) { return resolve(h, ptds, true, out); }
CUresult resolve_stream_nosticky(CUstream h, bool ptds, std::shared_ptr<Stream>& out) {
  return resolve(h, ptds, false, out);
}

bool implicit_deps_idle(Stream& s) {
  std::vector<Work> waits;
  implicit_waits(s, waits);
  return waits.empty();
}

uint64_t submit_seq(Stream& s, Work&& w) {
  std::vector<Work> items;
  implicit_waits(s, items);
  if (items.empty()) return s.enqueue(std::move(w));
  items.push_back(std::move(w));
  return s.enqueue_all(items);
}

CUresult submit(Stream& s, Work&& w) {
  if (s.capturing.load(std::memory_order_acquire)) return capture_work(s, std::move(w));
  SIM_CHECK(capture_check_implicit(s));
  submit_seq(s, std::move(w));
  return CUDA_SUCCESS;
}

CUresult submit_and_wait(Stream& s, Work&& w) {
  if (s.capturing.load(std::memory_order_acquire)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  SIM_CHECK(capture_check_implicit(s));
  if (implicit_deps_idle(s) && s.try_inline(w)) return context_usable(*s.ctx);
  uint64_t seq = submit_seq(s, std::move(w));
  s.wait(seq);
  return context_usable(*s.ctx);
}

CUresult synchronize_stream(Stream& s) {
  s.wait(s.submitted());
  return context_usable(*s.ctx);
}

}  // namespace simgpu
