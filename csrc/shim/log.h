// The shim's only output: errors always, the rest with SINGULARITY_DEBUG.
// Never on a hot path.
#pragma once

namespace sing::shim {

void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace sing::shim
