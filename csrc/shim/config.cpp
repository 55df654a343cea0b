#include "config.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace sing::shim {

namespace {

std::string env(const char* name, const std::string& fallback = {}) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  unsigned long long x = std::strtoull(v, &end, 0);
  if (end && (*end == 'G' || *end == 'g')) x <<= 30;
  else if (end && (*end == 'M' || *end == 'm')) x <<= 20;
  return x ? x : fallback;
}

// The directory this library was loaded from: the proxy and the simulated
// driver are installed beside it.
std::string own_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_dir), &info) && info.dli_fname) {
    std::string path = info.dli_fname;
    auto slash = path.rfind('/');
    if (slash != std::string::npos) return path.substr(0, slash);
  }
  return ".";
}

Config load() {
  Config c;
  const std::string dir = own_dir();
  c.socket = env("SINGULARITY_SOCKET");
  c.backend = env("SINGULARITY_BACKEND", dir + "/libsimgpu.so");
  c.proxy = env("SINGULARITY_PROXY", dir + "/singproxy-server");
  c.job = env("SINGULARITY_JOB", "default");
  // 64 TiB: far below where the kernel places mmaps (0x7f..) and PIE
  // programs (0x55..), above AddressSanitizer's shadow (up to 16 TiB) and the
  // simulated driver's own arenas (32-64 TiB, csrc/simgpu/driver/vaspace.h).
  // 1 TiB of device addresses covers any GPU's memory; the shared host range
  // follows it; 12 such slots fit below 80 TiB.
  c.va_base = env_u64("SINGULARITY_VA_BASE", 0x400000000000ull);
  c.va_base_explicit = !env("SINGULARITY_VA_BASE").empty();
  c.va_size = env_u64("SINGULARITY_VA_SIZE", 1ull << 40);
  c.host_size = env_u64("SINGULARITY_HOST_SIZE", 256ull << 30);
  c.debug = !env("SINGULARITY_DEBUG").empty();
  return c;
}

}  // namespace

const Config& config() {
  static const Config c = load();
  return c;
}

}  // namespace sing::shim
