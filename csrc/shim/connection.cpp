// Connecting to the proxy: through the host daemon's socket, or by starting a
// private proxy.  Then the shared segment, the job's address ranges, and the
// per-thread channels.
#include "connection.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <thread>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "config.h"
#include "host_heap.h"
#include "log.h"
#include "wire/control.h"
#include "wire/futex.h"
#include "wire/socket.h"

extern char** environ;

namespace sing::shim {

std::atomic<bool> g_initialized{false};

namespace {

Connection* g_conn = nullptr;
CUresult g_connect_error = CUDA_SUCCESS;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
std::mutex g_socket_mu;

// How long a waiting thread sleeps before checking that the proxy lives: a
// dead proxy is noticed within this (the issue asks for 1 s).
constexpr int64_t kLivenessCheckNs = 100'000'000;

int connect_daemon(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    close(fd);
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// Starts a proxy that serves this process alone, connected by a socketpair.
// The proxy daemonizes (double fork) so it is never our child to reap, and it
// exits when our end of the socket closes.
int spawn_private_proxy(const Config& cfg) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, sv[1], 3);  // dup2 clears CLOEXEC on fd 3
  std::vector<std::string> args = {cfg.proxy, "--fd", "3", "--daemonize", "--backend", cfg.backend};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The proxy must not load the shim itself.
  std::vector<std::string> envs;
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, "LD_PRELOAD=", 11) == 0) continue;
    envs.emplace_back(*e);
  }
  envs.emplace_back("SINGULARITY_PROXY_QUIET=1");
  std::vector<char*> envp;
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, cfg.proxy.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(sv[1]);
  if (rc != 0) {
    close(sv[0]);
    errno = rc;
    return -1;
  }
  // The first process exits as soon as it has forked the real proxy.
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    close(sv[0]);
    errno = ECHILD;
    return -1;
  }
  return sv[0];
}

}  // namespace

Connection* Connection::get() {
  pthread_once(&g_once, [] {
    auto* c = new Connection();
    CUresult r = c->establish();
    if (r == CUDA_SUCCESS) {
      g_conn = c;
      // Serves the proxy's checkpoint commands; signals stay with the app's
      // own threads.
      sigset_t all, old;
      sigfillset(&all);
      pthread_sigmask(SIG_SETMASK, &all, &old);
      std::thread([c] { c->run_control(); }).detach();
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
    } else {
      g_connect_error = r;
      delete c;
    }
  });
  return g_conn;
}

CUresult Connection::connect_error() { return g_connect_error; }

CUresult Connection::establish() {
  const Config& cfg = config();
  // Several apps may share a daemon's proxy, each with its own address range.
  // Unless the range was given explicitly (a restored job must get its old
  // one back), try the next slots when the proxy already serves one.
  const int slots = cfg.va_base_explicit ? 1 : 12;
  CUresult last = CUDA_ERROR_NO_DEVICE;
  for (int slot = 0; slot < slots; ++slot) {
    const uint64_t base = cfg.va_base + uint64_t(slot) * (cfg.va_size + cfg.host_size);
    bool busy, released_soon;
    last = attempt(base, &busy, &released_soon);
    if (released_soon && cfg.va_base_explicit) {
      // A departed app's range (this job's previous run): the proxy frees it
      // once the work that app left queued has run.  There is no other range
      // this job may have, so wait for it.
      log_error("waiting for the proxy to release this job's range (its previous app's work still runs)");
      do {
        timespec ts{0, 50'000'000};
        nanosleep(&ts, nullptr);
        last = attempt(base, &busy, &released_soon);
      } while (released_soon);
    }
    if (last == CUDA_SUCCESS || !busy) return last;
  }
  return last;
}

CUresult Connection::attempt(uint64_t va_base, bool* busy, bool* released_soon) {
  *busy = *released_soon = false;
  const Config& cfg = config();
  const uint64_t host_base = va_base + cfg.va_size;
  // The job's device addresses must never be used by the app's own
  // allocations: reserve them before anything else can land there.
  void* va = mmap(reinterpret_cast<void*>(va_base), cfg.va_size, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (va == MAP_FAILED) {
    *busy = errno == EEXIST;
    log_error("cannot reserve the job's device addresses at 0x%llx: %s", static_cast<unsigned long long>(va_base),
              std::strerror(errno));
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  auto undo = [&] {
    munmap(reinterpret_cast<void*>(va_base), cfg.va_size);
    HostHeap::destroy();
    if (host_fd_ >= 0) close(host_fd_);
    host_fd_ = -1;
  };
  if (!HostHeap::create(host_base, cfg.host_size, &host_fd_)) {
    munmap(reinterpret_cast<void*>(va_base), cfg.va_size);
    *busy = true;
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  int fd = cfg.socket.empty() ? spawn_private_proxy(cfg) : connect_daemon(cfg.socket);
  if (fd < 0) {
    log_error("cannot reach a proxy (%s: %s)", cfg.socket.empty() ? cfg.proxy.c_str() : cfg.socket.c_str(),
              std::strerror(errno));
    undo();
    return CUDA_ERROR_NO_DEVICE;
  }
  va_base_ = va_base;
  va_size_ = cfg.va_size;
  host_base_ = host_base;
  CUresult r = handshake(fd, va_base, false, 0, busy, released_soon);
  if (r != CUDA_SUCCESS) undo();
  return r;
}

CUresult Connection::handshake(int fd, uint64_t va_base, bool reattach, uint64_t token, bool* busy,
                               bool* not_yet) {
  const Config& cfg = config();
  wire::Hello hello{};
  hello.version = wire::kVersion;
  hello.pid = getpid();
  hello.reattach = reattach;
  hello.token = token;
  hello.va_base = va_base;
  hello.va_size = cfg.va_size;
  hello.host_base = va_base + cfg.va_size;
  hello.host_size = cfg.host_size;
  std::snprintf(hello.job, sizeof(hello.job), "%s", cfg.job.c_str());
  wire::Welcome welcome{};
  int seg_fd = -1;
  if (!wire::send_msg(fd, &hello, sizeof(hello), host_fd_) || !wire::recv_msg(fd, &welcome, sizeof(welcome), &seg_fd)) {
    if (!reattach) log_error("proxy handshake failed: %s", std::strerror(errno));
    close(fd);
    return CUDA_ERROR_NO_DEVICE;
  }
  if (welcome.result != CUDA_SUCCESS || seg_fd < 0) {
    *busy = welcome.range_busy != 0;
    *not_yet = welcome.not_yet != 0;
    if (!*busy && !*not_yet) log_error("proxy refused the connection: %s", welcome.message);
    close(fd);
    if (seg_fd >= 0) close(seg_fd);
    return welcome.result != CUDA_SUCCESS ? CUresult(welcome.result) : CUDA_ERROR_NO_DEVICE;
  }
  void* seg = mmap(nullptr, welcome.segment_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, seg_fd, 0);
  close(seg_fd);
  if (seg == MAP_FAILED) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  auto* header = static_cast<wire::SegmentHeader*>(seg);
  if (header->magic != wire::kMagic || header->version != wire::kVersion) {
    log_error("proxy speaks another protocol (version %u, this shim %u)", header->version, wire::kVersion);
    munmap(seg, welcome.segment_bytes);
    close(fd);
    return CUDA_ERROR_NO_DEVICE;
  }
  // The old segment stays mapped: a thread may still be reading its last
  // answer there.  It is never written again.
  segment_.store(header, std::memory_order_release);
  control_fd_.store(fd, std::memory_order_release);
  client_id_ = welcome.client_id;
  log_debug("%s proxy pid %d as client %u, device range 0x%llx", reattach ? "reattached to" : "connected to",
            welcome.proxy_pid, client_id_, static_cast<unsigned long long>(va_base));
  return CUDA_SUCCESS;
}

bool Connection::proxy_alive() {
  if (lost()) return false;
  if (detached_.load(std::memory_order_acquire)) return true;  // waiting for a reattach: not lost
  pollfd p{control_fd(), POLLIN, 0};
  int r = poll(&p, 1, 0);
  if (r <= 0) return true;
  bool gone = p.revents & (POLLHUP | POLLERR | POLLNVAL);
  if (!gone && (p.revents & POLLIN)) {
    // Readable is either EOF or the answer another thread is about to read
    // (a channel opened, host pages shared): only a peek tells them apart.
    char b;
    ssize_t n = recv(control_fd_, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  if (gone) {
    mark_lost();
    return false;
  }
  return true;
}

void Connection::mark_lost() {
  if (detached_.load()) return;  // a checkpointed app has no proxy on purpose
  if (!lost_.exchange(true)) log_error("the proxy is gone: CUDA calls now fail with CUDA_ERROR_DEVICE_UNAVAILABLE");
}

CUresult Connection::open_channel(uint32_t index) {
  std::lock_guard<std::mutex> lock(g_socket_mu);
  wire::OpenChannel msg{};
  msg.index = index;
  wire::ChannelOpened reply{};
  const int fd = control_fd();
  if (!wire::send_msg(fd, &msg, sizeof(msg), -1) || !wire::recv_msg(fd, &reply, sizeof(reply), nullptr)) {
    mark_lost();
    return kProxyLost;
  }
  return CUresult(reply.result);
}

CUresult Connection::share_host(uint64_t addr, uint64_t bytes, int fd) {
  std::lock_guard<std::mutex> lock(g_socket_mu);
  wire::ShareHost msg{};
  msg.type = fd >= 0 ? wire::MsgType::ShareHost : wire::MsgType::UnshareHost;
  msg.addr = addr;
  msg.bytes = bytes;
  wire::HostShared reply{};
  if (!wire::send_msg(control_fd_, &msg, sizeof(msg), fd) ||
      !wire::recv_msg(control_fd_, &reply, sizeof(reply), nullptr)) {
    mark_lost();
    return kProxyLost;
  }
  return CUresult(reply.result);
}

CUresult Connection::unshare_host(uint64_t addr, uint64_t bytes) { return share_host(addr, bytes, -1); }

CUresult Connection::exchange_fd(wire::FdMsg msg, int send_fd, uint32_t channel_epoch, wire::FdMsg* reply,
                                 int* recv_fd) {
  // Not while the app is detached for a checkpoint: that waits for the reattach.
  if (!enter_publish(channel_epoch)) return kRestart;
  leave_publish();
  std::lock_guard<std::mutex> lock(g_socket_mu);
  const int sock = control_fd();
  if (!wire::send_msg(sock, &msg, sizeof(msg), send_fd) || !wire::recv_msg(sock, reply, sizeof(*reply), recv_fd)) {
    // The app's descriptor closed meanwhile by another of its threads is the
    // app's error; a detach that began meanwhile (the proxy was busy
    // checkpointing) starts the call over on the new connection.
    if (send_fd >= 0 && fcntl(send_fd, F_GETFD) < 0) return CUDA_ERROR_INVALID_VALUE;
    if (detached_.load() || epoch() != channel_epoch) return kRestart;
    mark_lost();
    return kProxyLost;
  }
  if (reply->type != wire::MsgType::FdReply) {
    if (recv_fd && *recv_fd >= 0) close(*recv_fd);
    mark_lost();
    return kProxyLost;
  }
  return CUresult(reply->result);
}

CUresult Connection::pass_fd(int fd, uint32_t channel_epoch, uint64_t* ticket) {
  wire::FdMsg msg{}, reply{};
  msg.type = wire::MsgType::FdToProxy;
  CUresult r = exchange_fd(msg, fd, channel_epoch, &reply, nullptr);
  *ticket = reply.ticket;
  return r;
}

CUresult Connection::collect_fd(uint64_t ticket, uint32_t channel_epoch, int* fd) {
  wire::FdMsg msg{}, reply{};
  msg.type = wire::MsgType::FdFromProxy;
  msg.ticket = ticket;
  *fd = -1;
  CUresult r = exchange_fd(msg, -1, channel_epoch, &reply, fd);
  if (r == CUDA_SUCCESS && *fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  if (r != CUDA_SUCCESS && *fd >= 0) {
    close(*fd);
    *fd = -1;
  }
  return r;
}

namespace {

// Closes the thread's channel when the thread exits, so the proxy's worker
// for it ends and the slot can be reused.
pthread_key_t g_channel_key;
pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
thread_local Channel* t_channel = nullptr;

void close_channel(void* p) {
  auto* ch = static_cast<Channel*>(p);
  if (!ch) return;
  if (!ch->connection()->lost()) {
    if (ch->begin(wire::kOpCloseChannel, 0, false)) ch->publish();
  }
  // The proxy frees the slot (state back to Free) once its worker has seen
  // the close; the Channel object itself is ours.
  delete ch;
}

}  // namespace

Channel* Connection::channel(CUresult* error) {
  if (t_channel && t_channel->epoch() == epoch()) return t_channel;
  if (t_channel) {
    // Reattached since: the old channel belongs to a proxy that is gone.
    delete t_channel;
    t_channel = nullptr;
    pthread_setspecific(g_channel_key, nullptr);
  }
  if (lost()) {
    *error = kProxyLost;
    return nullptr;
  }
  pthread_once(&g_key_once, [] { pthread_key_create(&g_channel_key, close_channel); });
  wire::SegmentHeader* seg = segment();
  const uint32_t ep = epoch();
  for (uint32_t i = 0; i < wire::kMaxChannels; ++i) {
    wire::Channel* shared = wire::channel_at(seg, i);
    uint32_t expected = uint32_t(wire::ChannelState::Free);
    if (!shared->state.compare_exchange_strong(expected, uint32_t(wire::ChannelState::Claimed))) continue;
    shared->owner_tid = uint32_t(syscall(SYS_gettid));
    CUresult r = open_channel(i);
    if (r != CUDA_SUCCESS) {
      shared->state.store(uint32_t(wire::ChannelState::Free));
      *error = r;
      return nullptr;
    }
    t_channel = new Channel(this, shared, i, ep);
    pthread_setspecific(g_channel_key, t_channel);
    return t_channel;
  }
  log_error("more than %u threads call CUDA at once", wire::kMaxChannels);
  *error = CUDA_ERROR_OUT_OF_MEMORY;
  return nullptr;
}

uint8_t* Channel::begin(uint16_t opcode, uint32_t payload, bool sync) {
  failure_ = kProxyLost;
  if (!conn_->enter_publish(epoch_)) {
    failure_ = kRestart;
    return nullptr;
  }
  wire::RecordHeader* h;
  // Wait for room: the proxy consumes continuously, so this is rare.
  while (!(h = ring_.try_reserve(payload))) {
    if (wire::spin_until([&] { return (h = ring_.try_reserve(payload)) != nullptr; }, kWaitSpinNs)) break;
    if (!conn_->proxy_alive()) {
      conn_->leave_publish();
      return nullptr;
    }
    usleep(50);
  }
  h->opcode = opcode;
  h->flags = sync ? wire::kRecordSync : 0;
  // The issue order across all of the app's threads: the proxy submits
  // records in ticket order, which is how a fire-and-forget call on one
  // thread stays ordered before a call another thread makes after it.
  h->ticket = conn_->segment()->next_ticket.fetch_add(1, std::memory_order_acq_rel);
  last_ticket_ = uint32_t(h->ticket);
  return reinterpret_cast<uint8_t*>(h + 1);
}

void Channel::publish() {
  ring_.publish();
  conn_->leave_publish();
  // Pairs with the worker's store to worker_sleeping then re-check of tail.
  if (ch_->worker_sleeping.load(std::memory_order_seq_cst)) {
    ch_->doorbell.fetch_add(1, std::memory_order_seq_cst);
    wire::futex_wake_all(&ch_->doorbell);
  }
}

namespace {
thread_local bool t_has_context = false;
}  // namespace

bool Channel::has_context() const { return t_has_context; }

CUresult Channel::wait(uint64_t yield_ns) {
  const uint32_t want = last_ticket_;
  if (wire::spin_then_yield_until([&] { return ch_->done_seq.load(std::memory_order_acquire) == want; }, kWaitSpinNs,
                                  yield_ns)) {
    t_has_context = ch_->has_context;
    return CUresult(ch_->result);
  }
  for (;;) {
    ch_->app_sleeping.store(1, std::memory_order_seq_cst);
    uint32_t seen = ch_->done_seq.load(std::memory_order_seq_cst);
    if (seen == want) break;
    wire::futex_wait(&ch_->done_seq, seen, kLivenessCheckNs);
    if (ch_->done_seq.load(std::memory_order_acquire) == want) break;
    if (!conn_->proxy_alive()) {
      ch_->app_sleeping.store(0, std::memory_order_relaxed);
      return kProxyLost;
    }
  }
  ch_->app_sleeping.store(0, std::memory_order_relaxed);
  t_has_context = ch_->has_context;
  return CUresult(ch_->result);
}

bool Channel::wait_counter(std::atomic<uint32_t>& counter, uint32_t target, bool or_answered) {
  auto done = [&] {
    return int32_t(counter.load(std::memory_order_acquire) - target) >= 0 || (or_answered && answered());
  };
  if (wire::spin_then_yield_until(done, kWaitSpinNs, kCopyYieldNs)) return true;
  // The proxy always wakes this word after bumping it; an answer wakes
  // another word, so a wait that also ends with one looks every millisecond.
  const int64_t timeout = or_answered ? 1'000'000 : kLivenessCheckNs;
  for (;;) {
    uint32_t seen = counter.load(std::memory_order_acquire);
    if (done()) return true;
    wire::futex_wait(&counter, seen, timeout);
    if (done()) return true;
    if (!conn_->proxy_alive()) return false;
  }
}

CUresult Channel::call(uint16_t opcode, const uint8_t* body, uint32_t size) {
  uint8_t* p = begin(opcode, size, true);
  if (!p) return failure();
  if (size) std::memcpy(p, body, size);
  publish();
  return wait();
}

}  // namespace sing::shim
