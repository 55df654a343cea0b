// One message (and optionally one file descriptor) over a SOCK_SEQPACKET
// unix socket.
#pragma once
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sing::wire {

inline bool send_msg(int sock, const void* data, size_t size, int fd) {
  iovec iov{const_cast<void*>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    msg.msg_control = buf;
    msg.msg_controllen = sizeof(buf);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == ssize_t(size);
}

// Receives one message of up to `cap` bytes; its size in *n.
inline bool recv_any(int sock, void* data, size_t cap, size_t* n, int* fd) {
  if (fd) *fd = -1;
  iovec iov{data, cap};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
  msg.msg_control = buf;
  msg.msg_controllen = sizeof(buf);
  ssize_t got;
  do {
    got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (got < 0 && errno == EINTR);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int x;
      std::memcpy(&x, CMSG_DATA(c), sizeof(int));
      if (fd) *fd = x;
      else close(x);
    }
  }
  if (got <= 0 || (msg.msg_flags & MSG_TRUNC)) {
    if (fd && *fd >= 0) {
      close(*fd);
      *fd = -1;
    }
    return false;
  }
  *n = size_t(got);
  return true;
}

// Receives exactly `size` bytes; a passed descriptor lands in *fd (-1 if
// none).  False on EOF, error or a message of another size.
inline bool recv_msg(int sock, void* data, size_t size, int* fd) {
  size_t got = 0;
  int passed = -1;
  if (fd) *fd = -1;
  if (!recv_any(sock, data, size, &got, &passed)) return false;
  if (got != size) {
    if (passed >= 0) close(passed);
    errno = EPROTO;
    return false;
  }
  if (fd) *fd = passed;
  else if (passed >= 0) close(passed);
  return true;
}

}  // namespace sing::wire
