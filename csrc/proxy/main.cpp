// singproxy-server: owns a device and serves the apps that forward their
// driver calls to it.
//
//   singproxy-server --backend LIB (--socket PATH | --fd N) [--daemonize]
//
// --socket: listen for any number of clients (the host daemon's mode).
// --fd: serve the one client already connected on descriptor N, and exit when
// it goes (the shim's private proxy).  The control socket carries only set-up
// messages; calls travel through each client's shared segment.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <future>
#include <vector>

#include "app_messages.h"
#include "backend.h"
#include "client.h"
#include "image.h"
#include "log.h"
#include "wire/control.h"
#include "wire/socket.h"

using namespace sing;
using namespace sing::proxy;

namespace {

struct Options {
  std::string backend;
  std::string socket;
  int fd = -1;
  bool daemonize = false;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "singproxy-server: %s\nusage: singproxy-server --backend LIB (--socket PATH | --fd N) [--daemonize]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--backend") o.backend = value();
    else if (a == "--socket") o.socket = value();
    else if (a == "--fd") o.fd = std::atoi(value().c_str());
    else if (a == "--daemonize") o.daemonize = true;
    else usage(("unknown argument " + a).c_str());
  }
  if (o.backend.empty()) usage("--backend is required");
  if (o.socket.empty() == (o.fd < 0)) usage("exactly one of --socket and --fd is required");
  return o;
}

volatile sig_atomic_t g_stop = 0;

class Server {
 public:
  explicit Server(bool single) : single_(single) { ep_ = epoll_create1(EPOLL_CLOEXEC); }

  void watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void listen_on(int fd, std::string path) {
    listen_fd_ = fd;
    socket_path_ = std::move(path);
    watch(fd);
  }

  // A connection whose first message (Hello) has not arrived yet.
  void add_connection(int fd) {
    if (!peer_allowed(fd)) {
      close(fd);
      return;
    }
    pending_[fd] = true;
    watch(fd);
  }

  int run() {
    epoll_event events[16];
    while (!g_stop) {
      int n = epoll_wait(ep_, events, 16, 500);
      if (n < 0 && errno != EINTR) return 1;
      for (int i = 0; i < n; ++i) {
        int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (c >= 0) add_connection(c);
          continue;
        }
        if (!serve(fd)) {
          if (single_) {
            // The one app is gone, and so is everything this process holds
            // for it once it ends.  Releasing it here would first wait for
            // all the work the app left queued (seconds, even minutes); the
            // end of the process drops that work, as a GPU's driver drops
            // the work of a process that ends.  No destructors: worker
            // threads may still be inside the backend.
            log_info("the app is gone: exiting");
            _exit(0);
          }
          drop(fd);
        }
      }
      reap_releases(false);
    }
    reap_releases(true);
    for (auto& [fd, c] : clients_) c->shutdown();
    for (auto& [t, c] : detached_) {
      c->shutdown();
      ready_mark(t, false);
    }
    return 0;
  }

 private:
  // Only the proxy's own user (or root) may connect: SO_PEERCRED.
  static bool peer_allowed(int fd) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
    if (cred.uid == getuid() || cred.uid == 0) return true;
    log_error("refused a connection from uid %u", cred.uid);
    return false;
  }

  bool serve(int fd) {
    if (pending_.count(fd)) return first_message(fd);
    auto it = clients_.find(fd);
    if (it == clients_.end()) return false;
    // Messages of several sizes: read the largest, check by type.
    alignas(8) uint8_t buf[64];
    size_t got = 0;
    int passed = -1;
    if (!wire::recv_any(fd, buf, sizeof(buf), &got, &passed)) return false;
    AppReply reply;
    if (!serve_app_message(*it->second, buf, got, passed, &reply)) return false;  // a malformed message ends the client
    const bool ok = wire::send_msg(fd, reply.bytes, reply.size, reply.fd);
    if (reply.fd >= 0) close(reply.fd);  // the app has its own now
    return ok;
  }

  // A connection says what it is with its first message: an app (Hello) or
  // a job's supervisor (Manage).
  bool first_message(int fd) {
    pending_.erase(fd);
    union {
      wire::Hello hello;
      wire::Manage manage;
    } msg{};
    size_t n = 0;
    int passed_fd = -1;
    if (!wire::recv_any(fd, &msg, sizeof(msg), &n, &passed_fd) || n < sizeof(wire::MsgType)) return false;
    if (msg.hello.type == wire::MsgType::Hello && n == sizeof(wire::Hello)) return hello(fd, msg.hello, passed_fd);
    if (passed_fd >= 0) close(passed_fd);
    if (msg.manage.type == wire::MsgType::Manage && n == sizeof(wire::Manage)) {
      manage(fd, msg.manage);
      return false;  // one request per connection
    }
    return false;
  }

  bool hello(int fd, wire::Hello& h, int host_fd) {
    wire::Welcome w{};
    w.proxy_pid = getpid();
    auto refuse = [&](CUresult r, const std::string& why, bool busy = false, bool not_yet = false) {
      w.result = r;
      w.range_busy = busy;
      w.not_yet = not_yet;
      std::snprintf(w.message, sizeof(w.message), "%s", why.c_str());
      if (!not_yet) log_error("refused pid %d: %s", h.pid, why.c_str());
      wire::send_msg(fd, &w, sizeof(w), -1);
      if (host_fd >= 0) close(host_fd);
      return false;
    };
    if (h.version != wire::kVersion) return refuse(CUDA_ERROR_NOT_SUPPORTED, "protocol version mismatch");
    if (host_fd < 0) return refuse(CUDA_ERROR_INVALID_VALUE, "no shared host memory attached");
    h.job[sizeof(h.job) - 1] = 0;
    int seg_fd = -1;
    std::string error;
    std::unique_ptr<Client> client;
    if (h.reattach) {
      // A checkpointed app coming back: to the client it left, or to one
      // restored from its image.
      auto it = detached_.find(h.token);
      if (it == detached_.end() || !it->second->reattachable.load())
        return refuse(CUDA_ERROR_NOT_READY, "no job to reattach to (yet)", false, true);
      if (it->second->va_base() != h.va_base || it->second->va_size() != h.va_size)
        return refuse(CUDA_ERROR_INVALID_VALUE, "the app's address range is not the image's");
      client = std::move(it->second);
      detached_.erase(it);
      ready_mark(h.token, false);
      CUresult r = client->reattach(fd, host_fd, &seg_fd, error);
      close(host_fd);
      if (r != CUDA_SUCCESS) {
        // What the job's supervisor reports (Status) instead of "restored".
        refused_[client->job()] = error;
        client->shutdown();
        return refuse(r, error);
      }
      refused_.erase(client->job());
      w.client_id = client->id();
    } else {
      client = std::make_unique<Client>(++next_id_, h.pid, fd, h.job);
      bool busy = false;
      CUresult r = client->setup(h.va_base, h.va_size, h.host_base, h.host_size, host_fd, &seg_fd, error, &busy);
      close(host_fd);
      host_fd = -1;
      // A range a departed app's release still holds is free again soon: an
      // app that must have it (its job's) waits; another takes the next one.
      if (r != CUDA_SUCCESS) return refuse(r, error, busy, busy && releasing(h));
      w.client_id = client->id();
    }
    w.result = CUDA_SUCCESS;
    w.segment_bytes = wire::segment_bytes();
    bool ok = wire::send_msg(fd, &w, sizeof(w), seg_fd);
    close(seg_fd);
    if (!ok) return false;
    log_info("client %u: pid %d job '%s'%s", client->id(), h.pid, client->job().c_str(),
             h.reattach ? " (reattached)" : "");
    clients_[fd] = std::move(client);
    return true;
  }

  Client* attached(const std::string& job) {
    for (auto& [fd, c] : clients_)
      if (c->job() == job) return c.get();
    return nullptr;
  }

  std::map<uint64_t, std::unique_ptr<Client>>::iterator detached(const std::string& job) {
    for (auto it = detached_.begin(); it != detached_.end(); ++it)
      if (it->second->job() == job) return it;
    return detached_.end();
  }

  void manage(int fd, wire::Manage& m) {
    m.job[sizeof(m.job) - 1] = 0;
    m.path[sizeof(m.path) - 1] = 0;
    m.chunks[sizeof(m.chunks) - 1] = 0;
    wire::ManageReply reply{};
    std::string error;
    const auto t0 = std::chrono::steady_clock::now();
    CUresult r = CUDA_SUCCESS;
    switch (m.op) {
      case wire::ManageOp::Checkpoint: {
        Client* c = attached(m.job);
        if (!c) {
          r = CUDA_ERROR_NOT_FOUND;
          error = std::string("no running job '") + m.job + "' on this proxy";
          break;
        }
        if ((r = c->quiesce(error)) != CUDA_SUCCESS) break;
        log_info("job '%s': quiesced in %.3f s", m.job,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        uint64_t token = std::random_device{}();
        token = (token << 32) ^ std::random_device{}() ^ uint64_t(getpid());
        c->set_token(token);
        ChunkStats stats;
        if ((r = write_image(*c, m.chunks, m.path, &stats, error)) != CUDA_SUCCESS) {
          c->resume();  // nothing is lost: the app goes on
          break;
        }
        if ((r = c->detach(token, error)) != CUDA_SUCCESS) {
          c->resume();
          break;
        }
        reply.bytes = stats.bytes;
        reply.bytes_written = stats.bytes_written;
        reply.chunks = stats.chunks;
        reply.chunks_written = stats.chunks_written;
        reply.token = token;
        break;
      }
      case wire::ManageOp::Resume: {
        auto it = detached(m.job);
        if (it == detached_.end()) {
          r = CUDA_ERROR_NOT_FOUND;
          error = std::string("no detached job '") + m.job + "'";
        } else {
          it->second->reattachable.store(true);
          ready_mark(it->first, true);
        }
        break;
      }
      case wire::ManageOp::Release: {
        auto it = detached(m.job);
        if (it == detached_.end()) {
          r = CUDA_ERROR_NOT_FOUND;
          error = std::string("no detached job '") + m.job + "'";
        } else {
          it->second->shutdown();
          ready_mark(it->first, false);
          detached_.erase(it);
          log_info("job '%s': released after its checkpoint (%.3f s)", m.job,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        break;
      }
      case wire::ManageOp::Restore: {
        auto c = read_image(++next_id_, m.chunks, m.path, error);
        if (!c && !releases_.empty()) {
          // Its range may be one a departed app's release still holds (the
          // same job, come back): once the releases are done, once more.
          reap_releases(true);
          c = read_image(++next_id_, m.chunks, m.path, error);
        }
        if (!c) {
          r = CUDA_ERROR_INVALID_IMAGE;
          break;
        }
        reply.token = c->token();
        if (detached_.count(c->token())) {
          r = CUDA_ERROR_ALREADY_MAPPED;
          error = "that image is already restored here";
          c->shutdown();
          break;
        }
        log_info("job '%s': restored from %s, waiting for the app", c->job().c_str(), m.path);
        ready_mark(c->token(), true);
        detached_[c->token()] = std::move(c);
        break;
      }
      case wire::ManageOp::Status:
        // With a job: whether its app is attached (a checkpoint or restore
        // answers only once the app is back), and the device memory its image
        // would hold (a migration decides by it whether its temporary image
        // fits in RAM).
        if (m.job[0]) {
          if (Client* c = attached(m.job)) {
            reply.bytes = image_memory_bytes(*c);
          } else if (detached(m.job) != detached_.end()) {
            r = CUDA_ERROR_NOT_READY;
            error = std::string("job '") + m.job + "' is waiting for its app to reattach";
          } else {
            r = CUDA_ERROR_NOT_FOUND;
            auto why = refused_.find(m.job);
            error = why != refused_.end() ? "the app could not reattach: " + why->second
                                          : std::string("no job '") + m.job + "' on this proxy";
          }
        }
        break;
      default:
        r = CUDA_ERROR_INVALID_VALUE;
        error = "unknown request";
    }
    reply.result = r;
    reply.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::snprintf(reply.message, sizeof(reply.message), "%s", error.c_str());
    // (A supervisor polls Status while its app reattaches: not an error.)
    if (r != CUDA_SUCCESS && m.op != wire::ManageOp::Status) log_error("job '%s': %s", m.job, error.c_str());
    wire::send_msg(fd, &reply, sizeof(reply), -1);
  }

  void drop(int fd) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    pending_.erase(fd);
    auto it = clients_.find(fd);
    if (it != clients_.end()) {
      if (it->second->detached()) {
        // Checkpointed: kept until released, resumed or reattached.
        log_info("client %u: detached for a checkpoint of job '%s'", it->second->id(), it->second->job().c_str());
        detached_[it->second->token()] = std::move(it->second);
      } else {
        log_info("client %u: disconnected, releasing its resources", it->second->id());
        release_later(std::move(it->second));
      }
      clients_.erase(it);
    }
    close(fd);
  }

  // A detached app may reattach (wire::reattach_mark_path): the shim polls
  // for this file instead of connecting again and again, because CRIU cannot
  // dump an app caught between connect() and this proxy's accept() (a
  // connection still in the listen queue, its Hello in it: "Non-empty write
  // queue on an in-flight socket").  Marks are made once CRIU is done with the
  // app: at Resume (after its dump) and at Restore (before it is restored).
  void ready_mark(uint64_t token, bool ready) {
    if (socket_path_.empty()) return;
    const std::string path = wire::reattach_mark_path(socket_path_, token);
    if (!ready) {
      unlink(path.c_str());
      return;
    }
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    else log_error("cannot create %s: %s", path.c_str(), std::strerror(errno));
  }

  // A departed app's resources are released on a thread of their own: its
  // streams are waited for first (the backend cannot drop work already
  // queued, and the app's memory must outlive the kernels using it), which
  // takes as long as that work, and the other apps and supervisors must not
  // wait meanwhile.  A new app that asks for a range a release still holds is
  // told to try again (`releasing`); a restore into one waits for the releases.
  struct Release {
    std::future<void> done;  // of the thread that releases
    uint64_t va_base, va_size, host_base, host_size;
    bool finished() const { return done.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }
  };

  // Whether a release under way holds part of the ranges `h` asks for.
  bool releasing(const wire::Hello& h) {
    auto overlap = [](uint64_t a, uint64_t an, uint64_t b, uint64_t bn) { return a < b + bn && b < a + an; };
    for (auto& r : releases_)
      if (!r.finished() && (overlap(r.va_base, r.va_size, h.va_base, h.va_size) ||
                            overlap(r.host_base, r.host_size, h.host_base, h.host_size)))
        return true;
    return false;
  }

  void release_later(std::unique_ptr<Client> c) {
    Release rel{{}, c->va_base(), c->va_size(), c->host_base(), c->host_size()};
    rel.done = std::async(std::launch::async, [c = std::move(c)]() mutable {
      const auto t0 = std::chrono::steady_clock::now();
      const uint32_t id = c->id();
      c.reset();  // ~Client: shutdown
      log_info("client %u: released in %.3f s", id,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    });
    releases_.push_back(std::move(rel));
  }

  // Forgets the finished releases, or with `all` waits for every one.
  void reap_releases(bool all) {
    if (all)
      for (auto& r : releases_) r.done.wait();
    std::erase_if(releases_, [](const Release& r) { return r.finished(); });
  }

  bool single_;
  std::string socket_path_;
  int ep_ = -1;
  int listen_fd_ = -1;
  uint32_t next_id_ = 0;
  std::map<int, bool> pending_;
  std::map<int, std::unique_ptr<Client>> clients_;
  std::map<uint64_t, std::unique_ptr<Client>> detached_;  // by reattach token
  std::map<std::string, std::string> refused_;             // job -> why its app's last reattach was refused
  std::vector<Release> releases_;                          // of departed apps, under way
};

int listen_unix(const std::string& path) {
  // Bound under a temporary name and renamed once listening: whoever waits
  // for `path` to appear (the job's supervisor) may connect at once.  (Bound
  // at `path` itself, a connect between bind() and listen() was refused.)
  // (In the same directory, and no longer than `path` in practice: a unix
  // socket's path has at most 107 bytes.)
  const size_t slash = path.rfind('/');
  const std::string tmp = (slash == std::string::npos ? std::string() : path.substr(0, slash + 1)) + ".s" +
                          std::to_string(getpid());
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || tmp.size() >= sizeof(addr.sun_path)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  std::memcpy(addr.sun_path, tmp.c_str(), tmp.size() + 1);
  unlink(tmp.c_str());
  mode_t old = umask(077);  // socket file 0600
  int r = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (r != 0 || listen(fd, 64) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  if (opt.daemonize) {
    // The shim waits for this first process: exit once the real proxy runs
    // detached, so it is nobody's child to reap.
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid > 0) _exit(0);
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      dup2(devnull, 0);
      close(devnull);
    }
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string error;
  if (!backend().load(opt.backend, error)) {
    log_error("cannot load backend %s: %s", opt.backend.c_str(), error.c_str());
    return 1;
  }
  CUresult r = BACKEND(cuInit)(0);
  if (r != CUDA_SUCCESS) {
    log_error("backend cuInit failed: %d", int(r));
    return 1;
  }

  Server server(opt.fd >= 0);
  if (opt.fd >= 0) {
    fcntl(opt.fd, F_SETFD, FD_CLOEXEC);
    server.add_connection(opt.fd);
  } else {
    int lfd = listen_unix(opt.socket);
    if (lfd < 0) {
      log_error("cannot listen on %s: %s", opt.socket.c_str(), std::strerror(errno));
      return 1;
    }
    server.listen_on(lfd, opt.socket);
    log_info("serving %s on %s", opt.backend.c_str(), opt.socket.c_str());
  }
  return server.run();
}
