// The app's side of checkpoints: the gate every record passes, and the
// control thread that carries out the proxy's commands (docs/checkpoint.md).
//
// QUIESCE closes the gate: a thread about to publish a record parks there,
// and once no thread is between enter_publish and leave_publish, nothing
// more will reach the proxy, which then drains what it has.  DETACH closes
// the socket (CRIU cannot dump a connection to a process outside the job)
// and waits for a proxy to come back for the job: the same one after a
// checkpoint that leaves the app running, a new one (any device, any proxy)
// after a restore.  Parked threads then start their calls over on the new
// connection; a call that had published part of its records (a staged copy)
// starts over as a whole, which is safe because every such call is
// idempotent.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config.h"
#include "connection.h"
#include "host_registry.h"
#include "log.h"
#include "wire/control.h"
#include "wire/futex.h"

namespace sing::shim {

namespace {
constexpr int64_t kPollNs = 100'000'000;

int connect_socket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof(addr.sun_path)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}
}  // namespace

bool Connection::enter_publish(uint32_t channel_epoch) {
  for (;;) {
    publishing_.fetch_add(1, std::memory_order_seq_cst);
    if (gate_.load(std::memory_order_seq_cst) == 0) {
      if (epoch() == channel_epoch) return true;
      publishing_.fetch_sub(1, std::memory_order_seq_cst);
      return false;  // reattached since this channel was opened
    }
    publishing_.fetch_sub(1, std::memory_order_seq_cst);
    uint32_t g = gate_.load(std::memory_order_seq_cst);
    if (g != 0) wire::futex_wait(&gate_, g, kPollNs);
  }
}

void Connection::leave_publish() { publishing_.fetch_sub(1, std::memory_order_seq_cst); }

bool Connection::reattach(uint64_t token) {
  const Config& cfg = config();
  // Only once the proxy says so (a file; no descriptor is opened): a
  // connection attempt caught by CRIU's dump would fail the dump.
  if (!cfg.socket.empty() && access(wire::reattach_mark_path(cfg.socket, token).c_str(), F_OK) != 0) return false;
  int fd = connect_socket(cfg.socket);
  if (fd < 0) return false;
  bool busy = false, not_yet = false;
  if (handshake(fd, va_base_, true, token, &busy, &not_yet) != CUDA_SUCCESS) return false;
  return true;
}

void Connection::run_control() {
  uint32_t seen = 0;
  for (;;) {
    wire::SegmentHeader* seg = segment();
    uint32_t seq = seg->command_seq.load(std::memory_order_acquire);
    if (seq == seen) {
      wire::futex_wait(&seg->command_seq, seq, kPollNs);
      if (lost()) return;
      continue;
    }
    seen = seq;
    const uint32_t cmd = seg->command.load(std::memory_order_acquire);
    if (cmd == wire::kCmdQuiesce) {
      gate_.store(1, std::memory_order_seq_cst);
      while (publishing_.load(std::memory_order_seq_cst) != 0) usleep(50);
    } else if (cmd == wire::kCmdResume) {
      gate_.store(0, std::memory_order_seq_cst);
      wire::futex_wake_all(&gate_);
    } else if (cmd == wire::kCmdDetach) {
      const uint64_t token = seg->reattach_token;
      detached_.store(true, std::memory_order_seq_cst);
      seg->ack_seq.store(seq, std::memory_order_seq_cst);
      wire::futex_wake_all(&seg->ack_seq);
      // From here the app holds no connection to anyone: CRIU may dump it.
      int fd = control_fd_.exchange(-1);
      if (fd >= 0) close(fd);
      log_debug("detached for a checkpoint; waiting for a proxy to reattach to");
      // A restored copy of this process continues right here.
      // (Every 2 ms: the checkpoint or restore answers only once the app is
      // back; a look costs one access() until the proxy marks the job ready.)
      while (!reattach(token)) {
        struct timespec ts {0, 2'000'000};
        nanosleep(&ts, nullptr);
      }
      detached_.store(false, std::memory_order_seq_cst);
      epoch_.fetch_add(1, std::memory_order_seq_cst);
      seen = 0;  // a new segment counts from zero
      HostRegistry::get().share_again(this);  // before the app's threads go on
      gate_.store(0, std::memory_order_seq_cst);
      wire::futex_wake_all(&gate_);
      continue;
    }
    seg->ack_seq.store(seq, std::memory_order_seq_cst);
    wire::futex_wake_all(&seg->ack_seq);
  }
}

}  // namespace sing::shim
