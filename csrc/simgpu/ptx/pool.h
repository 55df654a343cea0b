// The worker threads every launch shares.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace simgpu::ptx {

// A unit of work pool threads pick up.  work() runs until the task has
// nothing more to hand out and returns false, or returns true to be called
// again.  A task is complete when it is exhausted and no worker is inside
// work().
class Task {
 public:
  virtual ~Task() = default;
  virtual bool work(unsigned worker) = 0;

 private:
  friend class Pool;
  int workers_ = 0;
  bool exhausted_ = false;
  bool queued_ = false;
};

class Pool {
 public:
  static Pool& instance();
  unsigned size() const { return unsigned(threads_.size()); }
  void submit(Task* t);
  // Blocks until `t` is complete (never spins).
  void wait(Task* t);
  ~Pool();

 private:
  explicit Pool(unsigned n);
  void loop(unsigned id);
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<Task*> queue_;
};

}  // namespace simgpu::ptx
