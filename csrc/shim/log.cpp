#include "log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "config.h"

namespace sing::shim {

namespace {
void vlog(const char* fmt, va_list ap) {
  char buf[512];
  int n = std::snprintf(buf, sizeof(buf), "singularity-shim[%d]: ", getpid());
  if (n < 0) return;
  int m = std::vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
  if (m < 0) return;
  size_t len = size_t(n) + (size_t(m) < sizeof(buf) - n - 1 ? size_t(m) : sizeof(buf) - n - 2);
  buf[len++] = '\n';
  // One write so lines of different threads never interleave.
  ssize_t ignored = write(2, buf, len);
  (void)ignored;
}
}  // namespace

void log_error(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

void log_debug(const char* fmt, ...) {
  if (!config().debug) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(fmt, ap);
  va_end(ap);
}

}  // namespace sing::shim
