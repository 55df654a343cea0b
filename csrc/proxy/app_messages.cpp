#include "app_messages.h"

#include <unistd.h>

#include <cstring>

#include "wire/control.h"

namespace sing::proxy {

namespace {
template <class T>
void put(AppReply* reply, const T& msg) {
  static_assert(sizeof(T) <= sizeof(reply->bytes));
  std::memcpy(reply->bytes, &msg, sizeof(msg));
  reply->size = sizeof(msg);
}
}  // namespace

bool serve_app_message(Client& client, const uint8_t* buf, size_t got, int passed, AppReply* reply) {
  wire::MsgType type{};
  if (got < sizeof(type)) {
    if (passed >= 0) close(passed);
    return false;
  }
  std::memcpy(&type, buf, sizeof(type));
  if (type == wire::MsgType::OpenChannel && got == sizeof(wire::OpenChannel) && passed < 0) {
    wire::OpenChannel msg;
    std::memcpy(&msg, buf, sizeof(msg));
    wire::ChannelOpened out{};
    out.result = client.open_channel(msg.index);
    put(reply, out);
    return true;
  }
  if ((type == wire::MsgType::ShareHost || type == wire::MsgType::UnshareHost) && got == sizeof(wire::ShareHost) &&
      (passed >= 0) == (type == wire::MsgType::ShareHost)) {
    wire::ShareHost msg;
    std::memcpy(&msg, buf, sizeof(msg));
    wire::HostShared out{};
    out.result = type == wire::MsgType::ShareHost ? client.share_host(msg.addr, msg.bytes, passed)
                                                  : client.unshare_host(msg.addr, msg.bytes);
    if (passed >= 0) close(passed);  // the mapping keeps the memory
    put(reply, out);
    return true;
  }
  // Descriptors of shareable handles (fd_exchange.h): parked for the call
  // that imports it, or collected after the call that exported it.
  if (type == wire::MsgType::FdToProxy && got == sizeof(wire::FdMsg) && passed >= 0) {
    wire::FdMsg out{};
    out.type = wire::MsgType::FdReply;
    out.result = client.fds_from_app.park(passed, &out.ticket);
    put(reply, out);
    return true;
  }
  if (type == wire::MsgType::FdFromProxy && got == sizeof(wire::FdMsg) && passed < 0) {
    wire::FdMsg msg;
    std::memcpy(&msg, buf, sizeof(msg));
    wire::FdMsg out{};
    out.type = wire::MsgType::FdReply;
    reply->fd = client.fds_for_app.take(msg.ticket);
    out.result = reply->fd >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    out.ticket = msg.ticket;
    put(reply, out);
    return true;
  }
  if (passed >= 0) close(passed);
  return false;
}

}  // namespace sing::proxy
