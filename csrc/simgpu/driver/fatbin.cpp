// Fatbin containers, worked out from `nvcc -fatbin` output (CUDA 13):
//
//   container header (16 bytes, little endian)
//     u32 magic 0xBA55ED50, u16 version 1, u16 header size, u64 size of the entries
//   entry header (header size at +4, >= 64 bytes)
//     +0  u16 kind: 1 PTX, 2 ELF (cubin)      +4  u32 header size
//     +8  u64 payload size (padded)           +16 u32 compressed size (0 = stored)
//     +28 u32 architecture (90 = sm_90)       +40 u64 flags
//     +56 u64 uncompressed size (compressed entries)
//   flags: 0x2000 = LZ4 block (--compress-mode=speed),
//          0x8000 = Zstandard frame (the default and --compress-mode=size)
//
// The wrapper that host code hands to __cudaRegisterFatBinary (magic
// 0x466243B1, version, pointer to the container) is accepted as well.  The
// simulator runs PTX only: the best PTX entry for compute capability 9.0 is
// taken (the newest architecture not above 90); machine code is refused.
#include "fatbin.h"

#include <dlfcn.h>

#include <cstdio>
#include <vector>

namespace simgpu {

namespace {

constexpr uint32_t kFatbinMagic = 0xBA55ED50u;
constexpr uint32_t kWrapperMagic = 0x466243B1u;
constexpr uint64_t kFlagLz4 = 0x2000;
constexpr uint64_t kFlagZstd = 0x8000;
constexpr int kDeviceArch = 90;

template <class T>
T rd(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// libzstd is not a build dependency: it is found at run time, as the driver
// itself would need it only for compressed images.
bool zstd_decode(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size, std::string& log) {
  using Decompress = size_t (*)(void*, size_t, const void*, size_t);
  using IsError = unsigned (*)(size_t);
  static void* lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    log = "fatbin entry is Zstandard-compressed and libzstd.so.1 is not available to decompress it";
    return false;
  }
  static auto decompress = reinterpret_cast<Decompress>(dlsym(lib, "ZSTD_decompress"));
  static auto is_error = reinterpret_cast<IsError>(dlsym(lib, "ZSTD_isError"));
  if (!decompress || !is_error) {
    log = "libzstd.so.1 lacks ZSTD_decompress";
    return false;
  }
  size_t n = decompress(out, out_size, in, in_size);
  if (is_error(n) || n != out_size) {
    log = "corrupt Zstandard-compressed fatbin entry";
    return false;
  }
  return true;
}

std::string trim_nul(const uint8_t* p, size_t n) {
  size_t len = strnlen(reinterpret_cast<const char*>(p), n);
  return std::string(reinterpret_cast<const char*>(p), len);
}

struct Entry {
  uint16_t kind;
  uint32_t arch;
  uint64_t flags;
  const uint8_t* payload;
  uint64_t payload_size;
  uint32_t compressed_size;
  uint64_t uncompressed_size;
};

CUresult parse_fatbin(const uint8_t* p, size_t size, std::string& ptx, std::string& log) {
  uint16_t version = rd<uint16_t>(p + 4), header = rd<uint16_t>(p + 6);
  uint64_t body = rd<uint64_t>(p + 8);
  if (version != 1 || header < 16) {
    log = "unsupported fatbin container version " + std::to_string(version);
    return CUDA_ERROR_INVALID_IMAGE;
  }
  uint64_t total = uint64_t(header) + body;
  if (size && total > size) {
    log = "fatbin container is larger than the image";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  if (total > (uint64_t(1) << 32)) {
    log = "implausible fatbin container size";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  std::vector<Entry> entries;
  for (uint64_t off = header; off < total;) {
    if (total - off < 64) {
      log = "truncated fatbin entry header";
      return CUDA_ERROR_INVALID_IMAGE;
    }
    const uint8_t* e = p + off;
    Entry en;
    en.kind = rd<uint16_t>(e);
    uint32_t ehs = rd<uint32_t>(e + 4);
    en.payload_size = rd<uint64_t>(e + 8);
    en.compressed_size = rd<uint32_t>(e + 16);
    en.arch = rd<uint32_t>(e + 28);
    en.flags = rd<uint64_t>(e + 40);
    en.uncompressed_size = rd<uint64_t>(e + 56);
    if (ehs < 64 || ehs > total - off || en.payload_size > total - off - ehs) {
      log = "fatbin entry runs past the container";
      return CUDA_ERROR_INVALID_IMAGE;
    }
    en.payload = e + ehs;
    entries.push_back(en);
    off += ehs + en.payload_size;
  }
  const Entry* best = nullptr;
  std::string found;
  for (const auto& en : entries) {
    found += std::string(found.empty() ? "" : ", ") + (en.kind == 1 ? "PTX " : en.kind == 2 ? "sm_" : "kind ") +
             std::to_string(en.kind == 1 || en.kind == 2 ? en.arch : en.kind);
    if (en.kind != 1 || int(en.arch) > kDeviceArch) continue;
    if (!best || en.arch > best->arch) best = &en;
  }
  if (!best) {
    log = "no PTX for compute capability 9.0 in the fatbin (it holds: " + (found.empty() ? "nothing" : found) +
          "); the simulated GPU runs PTX only, not machine code";
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  if (!(best->flags & (kFlagLz4 | kFlagZstd))) {
    ptx = trim_nul(best->payload, best->payload_size);
    return CUDA_SUCCESS;
  }
  uint64_t csize = best->compressed_size ? best->compressed_size : best->payload_size;
  if (csize > best->payload_size || best->uncompressed_size == 0 || best->uncompressed_size > (uint64_t(1) << 31)) {
    log = "corrupt compressed fatbin entry header";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  std::vector<uint8_t> out(best->uncompressed_size);
  if (best->flags & kFlagZstd) {
    if (!zstd_decode(best->payload, csize, out.data(), out.size(), log)) return CUDA_ERROR_INVALID_IMAGE;
  } else if (!lz4_block_decode(best->payload, csize, out.data(), out.size())) {
    log = "corrupt LZ4-compressed fatbin entry";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  ptx = trim_nul(out.data(), out.size());
  return CUDA_SUCCESS;
}

// Whether the image starts with `magic` (little-endian).  Compares byte by
// byte and stops at the first difference: with no size known, a short text
// image ends at its NUL, which no magic contains, so nothing past it is read.
bool starts_with(const uint8_t* p, size_t size, uint32_t magic) {
  for (unsigned i = 0; i < 4; ++i) {
    if (size && i >= size) return false;
    if (p[i] != uint8_t(magic >> (8 * i))) return false;
  }
  return true;
}

}  // namespace

bool lz4_block_decode(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size) {
  const uint8_t* ip = in;
  const uint8_t* const iend = in + in_size;
  size_t op = 0;
  while (ip < iend) {
    uint8_t token = *ip++;
    size_t lit = token >> 4;
    if (lit == 15) {
      uint8_t b;
      do {
        if (ip >= iend) return false;
        b = *ip++;
        lit += b;
      } while (b == 255);
    }
    if (lit > size_t(iend - ip) || lit > out_size - op) return false;
    std::memcpy(out + op, ip, lit);
    ip += lit;
    op += lit;
    if (ip == iend) break;  // the last sequence carries literals only
    if (iend - ip < 2) return false;
    size_t offset = size_t(ip[0]) | (size_t(ip[1]) << 8);
    ip += 2;
    if (offset == 0 || offset > op) return false;
    size_t len = token & 15;
    if (len == 15) {
      uint8_t b;
      do {
        if (ip >= iend) return false;
        b = *ip++;
        len += b;
      } while (b == 255);
    }
    len += 4;
    if (len > out_size - op) return false;
    for (size_t i = 0; i < len; ++i, ++op) out[op] = out[op - offset];  // may overlap: byte by byte
  }
  return op == out_size;
}

CUresult extract_ptx(const void* image, size_t size, std::string& ptx, std::string& log) {
  if (!image) return CUDA_ERROR_INVALID_VALUE;
  auto* p = static_cast<const uint8_t*>(image);
  if (starts_with(p, size, kWrapperMagic) && (size == 0 || size >= 16)) {
    const void* data;
    std::memcpy(&data, p + 8, sizeof data);
    if (!data || rd<uint32_t>(static_cast<const uint8_t*>(data)) != kFatbinMagic) {
      log = "fatbin wrapper does not point at a fatbin container";
      return CUDA_ERROR_INVALID_IMAGE;
    }
    return parse_fatbin(static_cast<const uint8_t*>(data), 0, ptx, log);
  }
  if (starts_with(p, size, kFatbinMagic) && (size == 0 || size >= 16)) return parse_fatbin(p, size, ptx, log);
  if (starts_with(p, size, 0x464C457Fu)) {  // "\x7fELF"
    log = "the image is an ELF cubin (GPU machine code); the simulated GPU runs PTX only: load PTX, a fatbin "
          "that contains PTX, or compile with NVRTC for compute_XX / through the simulator's NVRTC front";
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  const char* text = static_cast<const char*>(image);
  size_t len = size ? strnlen(text, size) : std::strlen(text);
  if (len == 0) {
    log = "empty module image";
    return CUDA_ERROR_INVALID_IMAGE;
  }
  for (size_t i = 0; i < len && i < 4096; ++i) {
    unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t' && ch != '\f' && ch != '\v') {
      log = "the image is neither PTX text, a fatbin nor an ELF cubin";
      return CUDA_ERROR_INVALID_IMAGE;
    }
  }
  ptx.assign(text, len);
  return CUDA_SUCCESS;
}

}  // namespace simgpu
