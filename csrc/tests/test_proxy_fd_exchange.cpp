// The proxy's parking place for descriptors of shareable handles: a hostile
// or dying app must not make it leak or grow (fd_exchange.h).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "fd_exchange.h"

using sing::proxy::FdExchange;

namespace {
int new_fd() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }
bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }
}  // namespace

TEST(FdExchange, ParkedDescriptorIsTakenOnce) {
  FdExchange x;
  const int fd = new_fd();
  uint64_t ticket = 0;
  ASSERT_EQ(x.park(fd, &ticket), CUDA_SUCCESS);
  EXPECT_NE(ticket, 0u);
  EXPECT_EQ(x.take(ticket + 1), -1);
  EXPECT_EQ(x.take(0), -1);
  EXPECT_EQ(x.take(ticket), fd);
  EXPECT_EQ(x.take(ticket), -1);
  EXPECT_TRUE(is_open(fd));  // the taker's now
  close(fd);
}

TEST(FdExchange, FullExchangeRefusesAndClosesTheDescriptor) {
  FdExchange x;
  std::vector<int> fds;
  uint64_t ticket;
  for (size_t i = 0; i < FdExchange::kMaxParked; ++i) {
    fds.push_back(new_fd());
    ASSERT_EQ(x.park(fds.back(), &ticket), CUDA_SUCCESS);
  }
  const int extra = new_fd();
  EXPECT_EQ(x.park(extra, &ticket), CUDA_ERROR_OPERATING_SYSTEM);
  EXPECT_FALSE(is_open(extra));
  EXPECT_EQ(x.parked(), FdExchange::kMaxParked);
  // Tickets are never reused: one taken frees a place under a new ticket.
  EXPECT_EQ(x.take(ticket), fds.back());
  close(fds.back());
  uint64_t next;
  const int again = new_fd();
  ASSERT_EQ(x.park(again, &next), CUDA_SUCCESS);
  EXPECT_GT(next, ticket);
}

TEST(FdExchange, ClearAndDestructionCloseWhatIsParked) {
  const int a = new_fd(), b = new_fd();
  uint64_t ticket;
  {
    FdExchange x;
    ASSERT_EQ(x.park(a, &ticket), CUDA_SUCCESS);
    x.clear();
    EXPECT_FALSE(is_open(a));
    EXPECT_EQ(x.take(ticket), -1);
    ASSERT_EQ(x.park(b, &ticket), CUDA_SUCCESS);
  }
  EXPECT_FALSE(is_open(b));
}
