// The proxy's log: stderr (the host daemon captures it), one line per event,
// never per forwarded call unless SINGULARITY_DEBUG asks.
#pragma once

namespace sing::proxy {

void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace sing::proxy
