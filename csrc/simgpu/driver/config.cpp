// SINGULARITY_SIM_DEVICES / _MEMORY / _NAME / _THREADS / _DEBUG.
#include "config.h"

#include <cctype>
#include <cstdlib>

namespace simgpu {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool parse_int(const std::string& text, long long lo, long long hi, long long& out) {
  std::string t = trim(text);
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace

bool parse_size(const std::string& text, uint64_t& out) {
  std::string t = trim(text);
  if (t.empty() || !std::isdigit(static_cast<unsigned char>(t[0]))) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(t.c_str(), &end, 10);
  if (errno) return false;
  std::string suffix = trim(end);
  unsigned shift = 0;
  if (!suffix.empty()) {
    char c = char(std::toupper(static_cast<unsigned char>(suffix[0])));
    std::string rest = suffix.substr(1);
    for (auto& ch : rest) ch = char(std::toupper(static_cast<unsigned char>(ch)));
    if (!(rest.empty() || rest == "B" || rest == "IB")) return false;
    switch (c) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B':
        if (!rest.empty()) return false;
        break;
      default: return false;
    }
  }
  if (shift && v > (~0ULL >> shift)) return false;
  out = uint64_t(v) << shift;
  return true;
}

bool load_config(Config& cfg, std::string& error) {
  cfg = Config{};
  if (const char* v = env("SINGULARITY_SIM_DEVICES")) {
    long long n;
    if (!parse_int(v, 0, kMaxDevices, n)) {
      error = std::string("SINGULARITY_SIM_DEVICES=") + v + ": expected a count from 0 to " +
              std::to_string(kMaxDevices);
      return false;
    }
    cfg.devices = int(n);
  }
  cfg.memory.assign(size_t(cfg.devices), uint64_t(80) << 30);
  if (const char* v = env("SINGULARITY_SIM_MEMORY")) {
    std::vector<std::string> parts;
    std::string cur;
    for (const char* p = v;; ++p) {
      if (*p == ',' || *p == 0) {
        parts.push_back(cur);
        cur.clear();
        if (!*p) break;
      } else {
        cur += *p;
      }
    }
    if (parts.size() != 1 && parts.size() != size_t(cfg.devices)) {
      error = std::string("SINGULARITY_SIM_MEMORY=") + v + ": give one size or one per device (" +
              std::to_string(cfg.devices) + ")";
      return false;
    }
    for (int d = 0; d < cfg.devices; ++d) {
      uint64_t bytes;
      const std::string& part = parts.size() == 1 ? parts[0] : parts[size_t(d)];
      if (!parse_size(part, bytes) || bytes < (uint64_t(1) << 20) || bytes > kMaxDeviceMemory) {
        error = std::string("SINGULARITY_SIM_MEMORY=") + v + ": '" + part +
                "' is not a size between 1M and 512G (bytes, or with a K/M/G suffix)";
        return false;
      }
      cfg.memory[size_t(d)] = bytes;
    }
  }
  cfg.name = "NVIDIA H100 80GB HBM3 (simulated)";
  if (const char* v = env("SINGULARITY_SIM_NAME")) cfg.name = v;
  if (const char* v = env("SINGULARITY_SIM_THREADS")) {
    long long n;
    // Read by the engine itself; checked here so that a typo is reported.
    if (!parse_int(v, 1, 4096, n)) {
      error = std::string("SINGULARITY_SIM_THREADS=") + v + ": expected a thread count from 1 to 4096";
      return false;
    }
  }
  if (const char* v = env("SINGULARITY_SIM_DEBUG")) cfg.debug = std::string(v) != "0";
  // CUDA_VISIBLE_DEVICES as the real driver reads it: indices, and the list
  // ends at the first entry that is not a valid one.  A proxy for device N of
  // the simulated machine runs with CUDA_VISIBLE_DEVICES=N and sees it as 0.
  cfg.physical.clear();
  if (const char* v = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::string list = v, cur;
    std::vector<uint64_t> memory;
    for (size_t i = 0; i <= list.size(); ++i) {
      if (i < list.size() && list[i] != ',') {
        cur += list[i];
        continue;
      }
      long long n;
      if (!parse_int(cur, 0, cfg.devices - 1, n)) break;
      bool dup = false;
      for (int p : cfg.physical) dup |= p == int(n);
      if (dup) break;
      cfg.physical.push_back(int(n));
      memory.push_back(cfg.memory[size_t(n)]);
      cur.clear();
    }
    cfg.devices = int(cfg.physical.size());
    cfg.memory = memory;
  } else {
    for (int d = 0; d < cfg.devices; ++d) cfg.physical.push_back(d);
  }
  return true;
}

}  // namespace simgpu
