// The control-socket messages an attached app sends besides its ring:
// OpenChannel, ShareHost / UnshareHost (registered host pages) and the
// descriptors of shareable handles (FdToProxy / FdFromProxy).  Decoded here,
// apart from the socket, so that the fuzz target feeds them as it feeds ring
// records.
#pragma once
#include <cstddef>
#include <cstdint>

#include "client.h"

namespace sing::proxy {

struct AppReply {
  alignas(8) uint8_t bytes[64];
  size_t size = 0;
  int fd = -1;  // to pass with the reply (the caller closes it once sent)
};

// Carries out the message `buf[0, got)` that arrived with descriptor `passed`
// (-1: none), which it always takes over (closed or kept).  False: malformed
// (wrong size for its type, a descriptor where none belongs or none where one
// must come); the connection is then dropped.
bool serve_app_message(Client& client, const uint8_t* buf, size_t got, int passed, AppReply* reply);

}  // namespace sing::proxy
