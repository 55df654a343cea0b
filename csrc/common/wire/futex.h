// Cross-process futex on 32-bit words in shared memory.
#pragma once
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

namespace sing::wire {

// Sleeps while *word == expected, at most timeout_ns (<0: forever).  Returns
// false on timeout.  Spurious wake-ups are possible: callers re-check.
inline bool futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int64_t timeout_ns) {
  struct timespec ts, *pts = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    pts = &ts;
  }
  long r = syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, pts, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

inline void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

inline void cpu_relax() { __builtin_ia32_pause(); }

inline uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Spins until pred() holds or `budget_ns` have passed (the clock read every
// 32 turns); whether pred() held.  A time budget, not a count of turns: a
// pause lasts ~4 ns on one CPU and ~35 ns on another (AMD EPYC here), and a
// waiter that spins too long takes the core from the work it waits for.
template <typename Pred>
inline bool spin_until(Pred pred, uint64_t budget_ns) {
  const uint64_t until = now_ns() + budget_ns;
  for (unsigned i = 1;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if (i % 32 == 0 && now_ns() >= until) return pred();
  }
}

}  // namespace sing::wire
