#include "fd_exchange.h"

#include <unistd.h>

namespace sing::proxy {

CUresult FdExchange::park(int fd, uint64_t* ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fds_.size() >= kMaxParked) {
    close(fd);
    return CUDA_ERROR_OPERATING_SYSTEM;
  }
  *ticket = next_++;
  fds_.emplace(*ticket, fd);
  return CUDA_SUCCESS;
}

int FdExchange::take(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(ticket);
  if (it == fds_.end()) return -1;
  int fd = it->second;
  fds_.erase(it);
  return fd;
}

void FdExchange::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [t, fd] : fds_) close(fd);
  fds_.clear();
}

size_t FdExchange::parked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fds_.size();
}

}  // namespace sing::proxy
