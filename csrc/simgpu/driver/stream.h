// Streams: in-order queues of work, each run by its own worker thread
// (started on first use), asynchronous to the host.
//
// Ordering across streams is explicit: a WaitWork item blocks a stream until
// another reaches a sequence number.  The legacy default stream's implicit
// synchronisation is built from such waits at submission time (submit()),
// and events are (stream, sequence) pairs.  Every wait points at work
// submitted earlier, so waits can never form a cycle.
#pragma once

#include "context.h"
#include "work.h"

#include <condition_variable>

namespace simgpu {

struct Capture;  // capture.cpp

struct Stream : Object, std::enable_shared_from_this<Stream> {
  enum class Type : uint8_t { Legacy, PerThread, User };

  Stream() : Object(Kind::Stream) {}
  ~Stream() override;
  CUstream handle() { return reinterpret_cast<CUstream>(this); }

  std::shared_ptr<Context> ctx;
  uint64_t ctx_id = 0;  // the context incarnation it belongs to
  Type type = Type::User;
  unsigned flags = 0;   // CU_STREAM_DEFAULT / CU_STREAM_NON_BLOCKING
  int priority = 0;
  uint64_t id = 0;      // cuStreamGetId
  CUaccessPolicyWindow access_policy{};
  CUsynchronizationPolicy sync_policy = CU_SYNC_POLICY_AUTO;

  bool blocking() const { return type != Type::Legacy && !(flags & CU_STREAM_NON_BLOCKING); }

  // Appends work; returns its sequence number (completed when completed() >= it).
  uint64_t enqueue(Work&& w);
  // Appends several items at once (no other thread's work in between).
  uint64_t enqueue_all(std::vector<Work>& ws);
  uint64_t submitted() const { return submitted_.load(std::memory_order_acquire); }
  uint64_t completed() const { return completed_.load(std::memory_order_acquire); }
  bool idle() const { return completed() >= submitted(); }
  // Blocks until completed() >= seq (spins briefly, then sleeps).
  void wait(uint64_t seq);
  // Stops accepting work; the worker drains the queue and exits.
  void close();

  // Runs work on the calling thread while the stream is idle, as if it had
  // been queued and run at once; false when the stream is busy.  Keeps
  // synchronous copies and event records free of thread hand-offs.
  bool try_inline(Work& w);

  // Capture state (capture.cpp), guarded by capture_mu.
  std::mutex capture_mu;
  std::shared_ptr<Capture> capture;
  std::atomic<bool> capturing{false};
  std::vector<CUgraphNode> capture_view;  // what cuStreamGetCaptureInfo last returned

 private:
  void worker_main(std::shared_ptr<Stream> self);

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_, space_cv_;
  // Like a GPU's push buffer the queue is bounded: past this many pending
  // items the submitting thread waits for the stream to catch up.
  static constexpr size_t kMaxQueued = 4096;
  int space_waiters_ = 0;
  // A growing ring of work items: after warm-up, queueing allocates nothing.
  class Ring {
   public:
    bool empty() const { return count_ == 0; }
    size_t size() const { return count_; }
    void push(Work&& w) {
      if (count_ == slots_.size()) grow();
      slots_[(head_ + count_) % slots_.size()] = std::move(w);
      ++count_;
    }
    Work pop() {
      Work w = std::move(slots_[head_]);
      slots_[head_] = EmptyWork{};  // drop what the slot referenced
      head_ = (head_ + 1) % slots_.size();
      --count_;
      return w;
    }

   private:
    void grow() {
      std::vector<Work> bigger(slots_.empty() ? 16 : slots_.size() * 2);
      for (size_t i = 0; i < count_; ++i) bigger[i] = std::move(slots_[(head_ + i) % slots_.size()]);
      slots_.swap(bigger);
      head_ = 0;
    }
    std::vector<Work> slots_;
    size_t head_ = 0, count_ = 0;
  };
  Ring queue_;
  uint64_t next_seq_ = 0;  // guarded by mu_
  std::atomic<uint64_t> submitted_{0}, completed_{0};
  int done_waiters_ = 0;
  bool worker_started_ = false, worker_idle_ = false, closing_ = false;
  std::atomic<int> inline_running_{0};
};

// Resolves an entry point's stream argument: 0 is the legacy stream, or the
// calling thread's default stream for _ptsz/_ptds entry points; also
// CU_STREAM_LEGACY / CU_STREAM_PER_THREAD.  Fails with INVALID_CONTEXT
// without a current context, INVALID_HANDLE for unknown handles, and the
// stream's context's sticky error.
CUresult resolve_stream(CUstream h, bool ptds, std::shared_ptr<Stream>& out);
// Same without failing on a sticky error (queries/destroy).
CUresult resolve_stream_nosticky(CUstream h, bool ptds, std::shared_ptr<Stream>& out);

std::shared_ptr<Stream> legacy_stream(Context& c);
std::shared_ptr<Stream> per_thread_stream(Context& c);
std::shared_ptr<Stream> new_stream(Context& c, Stream::Type type, unsigned flags, int priority);

// Submits work to a stream with CUDA's ordering rules: the legacy stream
// waits for all blocking streams of its context and they wait for it.
// While the stream captures, the work becomes a graph node instead.
CUresult submit(Stream& s, Work&& w);
// Like submit() but returns the sequence number (not for capture).
uint64_t submit_seq(Stream& s, Work&& w);
// Runs work in stream order and waits for it: inline when the stream (and
// what it implicitly waits for) is idle, else queued and waited for.
CUresult submit_and_wait(Stream& s, Work&& w);
// True when nothing the stream would implicitly wait for is pending.
bool implicit_deps_idle(Stream& s);

// Waits for everything submitted to the stream so far; returns the sticky error.
CUresult synchronize_stream(Stream& s);

// Stream priorities: [kLeastPriority .. kGreatestPriority], numerically lower = higher.
constexpr int kLeastPriority = 0;
constexpr int kGreatestPriority = -5;

}  // namespace simgpu
