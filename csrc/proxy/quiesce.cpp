// Bringing a client to rest for a checkpoint, and back (docs/checkpoint.md).
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "backend.h"
#include "client.h"
#include "dispatch.h"
#include "log.h"
#include "pools.h"
#include "wire/futex.h"

namespace sing::proxy {

namespace {
// How long the app gets to finish the calls it is in (a long kernel it waits
// for counts) before a checkpoint gives up.
constexpr uint64_t kQuiesceTimeoutNs = 60'000'000'000ull;

// The app closed its end of the control socket (it exited or died).
bool app_gone(int fd) {
  if (fd < 0) return true;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP)) return true;
  char b;
  return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;  // readable: EOF, or a message for later
}

enum class Ack { Done, TimedOut, AppGone };

// Sends one command to the shim's control thread and waits for its answer,
// giving up at once if the app goes away meanwhile (it was exiting).
Ack command(wire::SegmentHeader* seg, int app_fd, wire::Command cmd, uint64_t timeout_ns) {
  seg->command.store(cmd, std::memory_order_release);
  const uint32_t seq = seg->command_seq.fetch_add(1, std::memory_order_seq_cst) + 1;
  wire::futex_wake_all(&seg->command_seq);
  const uint64_t until = wire::now_ns() + timeout_ns;
  for (;;) {
    uint32_t ack = seg->ack_seq.load(std::memory_order_acquire);
    if (ack == seq) return Ack::Done;
    if (app_gone(app_fd)) return Ack::AppGone;
    if (wire::now_ns() > until) return Ack::TimedOut;
    wire::futex_wait(&seg->ack_seq, ack, 20'000'000);
  }
}

const char* why(Ack a, const char* timed_out) {
  return a == Ack::AppGone ? "the job exited during the checkpoint" : timed_out;
}
}  // namespace

void Client::each_worker(const std::function<void(Worker&)>& task) {
  std::lock_guard<std::mutex> lock(workers_mu_);
  for (auto& w : workers_)
    if (w && !w->finished()) task(*w);
}

CUresult Client::quiesce(std::string& error) {
  if (!segment_ || detached_) {
    error = "the job is not attached to this proxy";
    return CUDA_ERROR_INVALID_VALUE;
  }
  // 1. No new record: the shim parks every call at its gate.
  if (Ack a = command(segment_, control_fd_, wire::kCmdQuiesce, kQuiesceTimeoutNs); a != Ack::Done) {
    error = why(a, "the app did not come to rest within 60 s");
    return CUDA_ERROR_NOT_READY;
  }
  // 2. Everything published runs (a call the app waits for is answered).
  const uint64_t until = wire::now_ns() + kQuiesceTimeoutNs;
  for (;;) {
    bool idle = true;
    each_worker([&](Worker& w) { idle &= w.idle(); });
    if (idle) break;
    if (wire::now_ns() > until) {
      resume();
      error = "the app's calls did not finish within 60 s";
      return CUDA_ERROR_NOT_READY;
    }
    usleep(200);
  }
  // 3. The device drains: every context of the app.
  for (auto& [vid, real] : handles.live(HandleKind::Context)) {
    auto ctx = reinterpret_cast<CUcontext>(real);
    if (BACKEND(cuCtxPushCurrent_v2)(ctx) != CUDA_SUCCESS) continue;
    CUresult r = BACKEND(cuCtxSynchronize)();
    BACKEND(cuCtxPopCurrent_v2)(nullptr);
    if (r != CUDA_SUCCESS) {
      resume();
      const char* name = nullptr;
      BACKEND(cuGetErrorName)(r, &name);
      error = std::string("a context of the app failed (") + (name ? name : "?") +
              "): its state cannot be checkpointed";
      return r;
    }
  }
  reclaim_pending_frees(*this);
  return CUDA_SUCCESS;
}

void Client::resume() {
  if (segment_ && !detached_) command(segment_, control_fd_, wire::kCmdResume, kQuiesceTimeoutNs);
}

CUresult Client::detach(uint64_t token, std::string& error) {
  token_ = token;
  segment_->reattach_token = token;
  if (Ack a = command(segment_, control_fd_, wire::kCmdDetach, kQuiesceTimeoutNs); a != Ack::Done) {
    error = why(a, "the app did not detach within 60 s");
    return CUDA_ERROR_NOT_READY;
  }
  detached_ = true;
  reattachable.store(false);
  clear_parked_fds();
  // The channels end with this connection; a reattach opens new ones.
  std::lock_guard<std::mutex> lock(workers_mu_);
  for (auto& w : workers_) {
    if (w) w->stop();
    w.reset();
  }
  return CUDA_SUCCESS;
}

CUresult Client::reattach(int control_fd, int host_fd, int* segment_fd, std::string& error) {
  if (!host_size_) {
    // A restored client: the app brings its shared host memory back.
    bool busy = false;
    CUresult r = map_host(restored_host_base, restored_host_size, host_fd, error, &busy);
    if (r != CUDA_SUCCESS) return r;
    AnyClientContext any(*this);
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [ptr, b] : host_blocks) {
      if (b.kind == kRegistered) {
        // The app's own pages: registered when the shim shares them again
        // (share_host), right after this reattach and before its gate opens.
        pending_registrations.insert(ptr);
        continue;
      }
      r = BACKEND(cuMemHostRegister_v2)(reinterpret_cast<void*>(ptr), b.bytes,
                                        CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP);
      if (r != CUDA_SUCCESS) {
        error = "cannot register the app's pinned memory again";
        return r;
      }
    }
  }
  if (segment_) {
    munmap(segment_, segment_bytes_);
    segment_ = nullptr;
  }
  CUresult r = create_segment(segment_fd, error);
  if (r != CUDA_SUCCESS) return r;
  // Tickets count from zero on the new segment.
  dispatched_.store(0);
  dispatch_word_.store(0);
  control_fd_ = control_fd;
  detached_ = false;
  reattachable.store(false);
  clear_parked_fds();  // the old connection may have parked one while the checkpoint ran
  return CUDA_SUCCESS;
}

void Client::clear_parked_fds() {
  // A call that was to name one starts over after the reattach and parks its
  // descriptor again.
  fds_from_app.clear();
  fds_for_app.clear();
}

}  // namespace sing::proxy
