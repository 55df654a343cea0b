// File descriptors in transit between an app and its proxy, for shareable
// VMM handles (POSIX file descriptors).
//
// A descriptor can only cross the control socket (SCM_RIGHTS), while the call
// that produces or consumes it travels in the ring, served by another thread.
// So the descriptor is parked here under a ticket: the app parks the one it
// imports (wire::FdToProxy) and names the ticket in its import call; an
// export call parks the backend's descriptor and answers with the ticket,
// which the app then collects (wire::FdFromProxy).
//
// Bounded, because the other side may be hostile or die half-way: a full
// exchange refuses, and whatever is still parked is closed with the client.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>

#include "driver_api.h"

namespace sing::proxy {

class FdExchange {
 public:
  // Descriptors parked at once, per direction and client.  The shim collects
  // or uses each one right after it was parked; more waiting is a bug or an attack.
  static constexpr size_t kMaxParked = 16;

  FdExchange() = default;
  FdExchange(const FdExchange&) = delete;
  FdExchange& operator=(const FdExchange&) = delete;
  ~FdExchange() { clear(); }

  // Takes ownership of `fd`; closes it when the exchange is full.
  CUresult park(int fd, uint64_t* ticket);
  // The descriptor parked under `ticket`, now the caller's; -1 if none.
  int take(uint64_t ticket);
  // Closes everything parked (the connection that would collect it is gone).
  void clear();
  size_t parked() const;

 private:
  mutable std::mutex mu_;
  uint64_t next_ = 1;
  std::map<uint64_t, int> fds_;
};

}  // namespace sing::proxy
