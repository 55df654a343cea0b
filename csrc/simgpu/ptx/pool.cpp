#include "ptx/pool.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "ptx/engine.h"
#include "ptx/fp.h"

namespace simgpu::ptx {

unsigned worker_count() {
  static const unsigned n = [] {
    if (const char* s = std::getenv("SINGULARITY_SIM_THREADS")) {
      char* end = nullptr;
      unsigned long v = std::strtoul(s, &end, 10);
      if (end != s && *end == '\0' && v >= 1) return unsigned(std::min<unsigned long>(v, 1024));
    }
    unsigned h = std::thread::hardware_concurrency();
    return h ? h : 1u;
  }();
  return n;
}

// A child created by fork() has none of the parent's worker threads (and the
// pool's mutex may have been held at the fork): it gets a fresh pool, and the
// inherited one is abandoned untouched.
Pool& Pool::instance() {
  static std::mutex mu;
  static Pool* pool = nullptr;
  static pid_t owner = 0;
  std::lock_guard<std::mutex> lk(mu);
  pid_t me = getpid();
  if (!pool || owner != me) {
    pool = new Pool(worker_count());
    owner = me;
  }
  return *pool;
}

Pool::Pool(unsigned n) {
  threads_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this, i] { loop(i); });
    threads_.back().detach();
  }
}

// The pool lives until the process exits (workers sleep when idle), so that a
// launch running during static destruction still has its threads.
Pool::~Pool() = default;

void Pool::submit(Task* t) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    t->workers_ = 0;
    t->exhausted_ = false;
    t->queued_ = true;
    queue_.push_back(t);
  }
  work_cv_.notify_all();
}

void Pool::wait(Task* t) {
  std::unique_lock<std::mutex> lk(mu_);
  done_cv_.wait(lk, [t] { return t->exhausted_ && t->workers_ == 0; });
}

void Pool::loop(unsigned id) {
  // Kernels run with the default SSE environment whatever the creating
  // thread had (no flush-to-zero, round to nearest).
  fp::mxcsr_set(0x1f80);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [this] { return !queue_.empty(); });
    Task* t = queue_.front();
    ++t->workers_;
    lk.unlock();
    bool more = t->work(id);
    lk.lock();
    --t->workers_;
    if (!more && t->queued_) {
      t->queued_ = false;
      t->exhausted_ = true;
      queue_.erase(std::find(queue_.begin(), queue_.end(), t));
    }
    if (t->exhausted_ && t->workers_ == 0) done_cv_.notify_all();
  }
}

}  // namespace simgpu::ptx
