#include "log.h"

#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace sing::proxy {

namespace {
void vlog(const char* level, const char* fmt, va_list ap) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof(buf), "singproxy-server[%d] %s: ", getpid(), level);
  if (n < 0) return;
  int m = std::vsnprintf(buf + n, sizeof(buf) - size_t(n) - 1, fmt, ap);
  if (m < 0) return;
  size_t len = std::min(size_t(n) + size_t(m), sizeof(buf) - 2);
  buf[len++] = '\n';
  ssize_t ignored = write(2, buf, len);
  (void)ignored;
}
bool quiet() {
  // A private proxy shares the app's stderr: only errors there.
  static const bool q = std::getenv("SINGULARITY_PROXY_QUIET") != nullptr;
  return q;
}
bool debug_on() {
  static const bool on = std::getenv("SINGULARITY_DEBUG") != nullptr;
  return on;
}
}  // namespace

#define SING_LOG_FN(name, level, cond) \
  void name(const char* fmt, ...) {    \
    if (!(cond)) return;               \
    va_list ap;                        \
    va_start(ap, fmt);                 \
    vlog(level, fmt, ap);              \
    va_end(ap);                        \
  }
SING_LOG_FN(log_error, "error", true)
SING_LOG_FN(log_info, "info", !quiet())
SING_LOG_FN(log_debug, "debug", debug_on())
#undef SING_LOG_FN

}  // namespace sing::proxy
