// Cross-process futex on 32-bit words in shared memory.
#pragma once
#include <linux/futex.h>
#include <sched.h>
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

// spin_until, then gives the core away (sched_yield) between checks until
// `yield_ns` more have passed.  For waits that usually last tens of
// microseconds to a few milliseconds (a forwarded copy, a staged chunk): a
// futex sleep there costs a wake-up of 20-100 us on a VM (the waker's
// FUTEX_WAKE, an IPI, the idle vCPU rescheduled), which is the whole copy
// again at 1 MiB.  A yielding waiter still lets a thread queued on its core
// run (the proxy's worker, the kernels it waits for), unlike a pause loop.
// How long either side yields before sleeping while a copy is under way (a
// forwarded copy's answer, a staged copy's next chunk): the other side is doing
// the work, so this core is not what is waited for, and a futex wake-up costs
// 20-100 us on a VM (a 1 MiB pinned copy: ~18 -> ~25 GB/s, direct 28).  Not
// for other waits: they may wait for kernels that need this core (yielding in
// every wait made examples/train.py ~50% slower on the simulator).
inline constexpr uint64_t kCopyYieldNs = 2'000'000;

template <typename Pred>
inline bool spin_then_yield_until(Pred pred, uint64_t spin_ns, uint64_t yield_ns) {
  if (spin_until(pred, spin_ns)) return true;
  if (!yield_ns) return false;
  const uint64_t until = now_ns() + yield_ns;
  for (;;) {
    sched_yield();
    if (pred()) return true;
    if (now_ns() >= until) return pred();
  }
}

}  // namespace sing::wire
