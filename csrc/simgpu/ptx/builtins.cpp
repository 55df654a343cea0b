// Device-runtime functions PTX calls by name: vprintf and __assertfail.
//
// vprintf(fmt, args): `args` points to a buffer (usually in local memory)
// holding the arguments, each aligned to its size.  Formatting follows the
// host's printf; output is buffered per launch and written to stdout when
// the launch ends, like the GPU's printf buffer is flushed at sync points.
#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

constexpr size_t kMaxString = 1 << 16;

// Reads a NUL-terminated string at a generic address; false when any byte
// is outside memory the kernel may read.
bool read_string(Ctx& c, uint64_t a, uint32_t lane, std::string& out) {
  MemCacheEntry e{};
  out.clear();
  for (size_t i = 0; i < kMaxString; ++i) {
    const uint8_t* p = generic_xlate(c, e, a + i, 1, lane, false);
    if (!p) return false;
    if (*p == 0) return true;
    out.push_back(char(*p));
  }
  return true;
}

bool read_bytes(Ctx& c, uint64_t a, uint32_t lane, void* dst, unsigned n) {
  MemCacheEntry e{};
  const uint8_t* p = generic_xlate(c, e, a, n, lane, false);
  if (!p) return false;
  std::memcpy(dst, p, n);
  return true;
}

uint64_t slot_u64(Ctx& c, const Slot& s, uint32_t lane) {
  uint64_t v = 0;
  std::memcpy(&v, c.frame + s.off + size_t(lane) * s.stride, std::min<uint32_t>(8, s.size));
  return v;
}

// Formats one printf call; returns the number of arguments consumed, -1 on
// a bad argument address.
int format(Ctx& c, uint32_t lane, const std::string& fmt, uint64_t args, std::string& out) {
  size_t off = 0;
  int nargs = 0;
  auto fetch = [&](unsigned size, void* dst) {
    off = (off + size - 1) / size * size;
    bool ok = args && read_bytes(c, args + off, lane, dst, size);
    off += size;
    return ok;
  };
  char buf[512];
  for (size_t i = 0; i < fmt.size();) {
    char ch = fmt[i];
    if (ch != '%') {
      out.push_back(ch);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '%') {
      out.push_back('%');
      i += 2;
      continue;
    }
    // %[flags][width][.precision][length]conv
    size_t j = i + 1;
    std::string spec = "%";
    while (j < fmt.size() && std::strchr("-+ #0", fmt[j])) spec.push_back(fmt[j++]);
    auto number = [&]() -> bool {
      if (j < fmt.size() && fmt[j] == '*') {
        int32_t v = 0;
        if (!fetch(4, &v)) return false;
        ++nargs;
        spec += std::to_string(v);
        ++j;
        return true;
      }
      while (j < fmt.size() && fmt[j] >= '0' && fmt[j] <= '9') spec.push_back(fmt[j++]);
      return true;
    };
    if (!number()) return -1;
    if (j < fmt.size() && fmt[j] == '.') {
      spec.push_back(fmt[j++]);
      if (!number()) return -1;
    }
    int longs = 0;
    bool shorts = false;
    while (j < fmt.size() && std::strchr("hlLqjzt", fmt[j])) {
      char l = fmt[j++];
      if (l == 'l' || l == 'L' || l == 'q' || l == 'j' || l == 'z' || l == 't') ++longs;
      if (l == 'h') shorts = true;
    }
    if (j >= fmt.size()) {
      out += fmt.substr(i);
      break;
    }
    char conv = fmt[j++];
    i = j;
    switch (conv) {
      case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c': {
        uint64_t v = 0;
        unsigned size = longs ? 8 : 4;
        if (!fetch(size, &v)) return -1;
        ++nargs;
        std::string s2 = spec + "ll" + conv;
        if (conv == 'c') {
          std::snprintf(buf, sizeof buf, (spec + "c").c_str(), int(uint8_t(v)));
        } else if (conv == 'd' || conv == 'i') {
          int64_t x = size == 8 ? int64_t(v) : int64_t(int32_t(uint32_t(v)));
          if (shorts) x = int64_t(int16_t(x));
          std::snprintf(buf, sizeof buf, s2.c_str(), (long long)x);
        } else {
          uint64_t x = size == 8 ? v : uint64_t(uint32_t(v));
          if (shorts) x = uint16_t(x);
          std::snprintf(buf, sizeof buf, s2.c_str(), (unsigned long long)x);
        }
        out += buf;
        break;
      }
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A': {
        double v = 0;
        if (!fetch(8, &v)) return -1;
        ++nargs;
        std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v);
        out += buf;
        break;
      }
      case 's': {
        uint64_t p = 0;
        if (!fetch(8, &p)) return -1;
        ++nargs;
        std::string s;
        if (!p) s = "(null)";
        else if (!read_string(c, p, lane, s)) s = "<invalid string address>";
        if (spec == "%") {
          out += s;
        } else {
          int n = std::snprintf(nullptr, 0, (spec + "s").c_str(), s.c_str());
          std::string tmp(size_t(std::max(n, 0)) + 1, '\0');
          std::snprintf(tmp.data(), tmp.size(), (spec + "s").c_str(), s.c_str());
          tmp.resize(size_t(std::max(n, 0)));
          out += tmp;
        }
        break;
      }
      case 'p': {
        uint64_t p = 0;
        if (!fetch(8, &p)) return -1;
        ++nargs;
        std::snprintf(buf, sizeof buf, "0x%" PRIx64, p);
        out += buf;
        break;
      }
      default:
        // Unknown conversion: print it verbatim, as the device runtime does.
        out += spec;
        out.push_back(conv);
        break;
    }
  }
  return nargs;
}

int h_vprintf(Ctx& c, const Inst& in, uint32_t m) {
  const CallSite& cs = c.ir->calls[in.aux];
  std::string text;
  SIM_FOR_LANES(m, i) {
    uint64_t fa = slot_u64(c, cs.args[0], i), aa = slot_u64(c, cs.args[1], i);
    std::string fmt;
    int r;
    if (!read_string(c, fa, i, fmt)) r = -1;
    else r = format(c, i, fmt, aa, text);
    if (!cs.rets.empty()) {
      const Slot& s = cs.rets[0];
      int32_t v = r;
      std::memcpy(c.frame + s.off + size_t(i) * s.stride, &v, std::min<uint32_t>(4, s.size));
    }
  }
  if (!text.empty()) {
    std::lock_guard<std::mutex> lk(c.L->mu);
    c.L->printf_out += text;
  }
  return kNext;
}

int h_assertfail(Ctx& c, const Inst& in, uint32_t m) {
  if (m == 0) return kNext;
  const CallSite& cs = c.ir->calls[in.aux];
  uint32_t first = __builtin_ctz(m);
  std::string msg0;
  SIM_FOR_LANES(m, i) {
    std::string msg, file, func;
    read_string(c, slot_u64(c, cs.args[0], i), i, msg);
    read_string(c, slot_u64(c, cs.args[1], i), i, file);
    read_string(c, slot_u64(c, cs.args[3], i), i, func);
    uint32_t line = uint32_t(slot_u64(c, cs.args[2], i));
    std::fprintf(stderr, "%s:%u: %s: block: [%u,%u,%u], thread: [%u,%u,%u] Assertion `%s` failed.\n", file.c_str(),
                 line, func.c_str(), c.b->ctaid[0], c.b->ctaid[1], c.b->ctaid[2], c.w->tid[0][i], c.w->tid[1][i],
                 c.w->tid[2][i], msg.c_str());
    if (i == first) msg0 = "assertion `" + msg + "` failed at " + file + ":" + std::to_string(line);
  }
  std::fflush(stderr);
  return raise_fault(c, in, Fault::Assert, 0, first, msg0);
}

}  // namespace

OpFn sel_vprintf() { return &h_vprintf; }
OpFn sel_assertfail() { return &h_assertfail; }

}  // namespace simgpu::ptx
