// libsimnvrtc.so (soname libnvrtc.so.13): NVRTC for programs that run on the
// simulated GPU.
//
// Programs that compile for a real architecture (`-arch=sm_90`) get a CUBIN,
// machine code the PTX engine cannot run.  This library sits in front of the
// real NVRTC (path in SINGULARITY_REAL_NVRTC): such compiles are turned into
// compiles for the matching virtual architecture (`compute_90`), and the
// "CUBIN" handed back is the PTX of the same program, which libsimgpu's
// module loader accepts.  Every other entry point jumps straight to the real
// library, so the program sees NVRTC unchanged.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

// The few nvrtc.h types used here.  nvrtc.h ships with the NVRTC wheel, which
// is not a build dependency; these are ABI-stable since CUDA 7.
using nvrtcResult = int;
using nvrtcProgram = struct _nvrtcProgram*;
constexpr nvrtcResult NVRTC_SUCCESS = 0;
constexpr nvrtcResult NVRTC_ERROR_INVALID_PROGRAM = 4;
constexpr nvrtcResult NVRTC_ERROR_INTERNAL_ERROR = 11;

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

enum Index {
#define NVRTC_FN(name, kind) k_##name,
#include "nvrtc_api.def"
#undef NVRTC_FN
  kCount
};

const char* const kNames[] = {
#define NVRTC_FN(name, kind) #name,
#include "nvrtc_api.def"
#undef NVRTC_FN
};

extern "C" nvrtcResult simnvrtc_unavailable() { return NVRTC_ERROR_INTERNAL_ERROR; }

}  // namespace

// One pointer per entry point, filled before main() runs; the forwarding
// stubs jump through them.
extern "C" {
#define NVRTC_FN(name, kind) __attribute__((visibility("hidden"))) void* simnvrtc_real_##name;
#include "nvrtc_api.def"
#undef NVRTC_FN
}

namespace {

void** const simnvrtc_real[] = {
#define NVRTC_FN(name, kind) &simnvrtc_real_##name,
#include "nvrtc_api.def"
#undef NVRTC_FN
};

}  // namespace

namespace {

__attribute__((constructor)) void load_real_nvrtc() {
  for (void** p : simnvrtc_real) *p = reinterpret_cast<void*>(&simnvrtc_unavailable);
  const char* path = std::getenv("SINGULARITY_REAL_NVRTC");
  if (!path || !*path) {
    std::fprintf(stderr, "libsimnvrtc: SINGULARITY_REAL_NVRTC is not set; NVRTC calls will fail\n");
    return;
  }
  // NVRTC opens its builtins library by bare name; the loader that normally
  // brings NVRTC in (cuda-pathfinder) loads it first from the same
  // directory.  That loader now finds this library instead, so do it here.
  std::string dir = path;
  dir = dir.substr(0, dir.rfind('/') + 1);
  if (!dlopen((dir + "libnvrtc-builtins.so.13.0").c_str(), RTLD_NOW | RTLD_GLOBAL))
    std::fprintf(stderr, "libsimnvrtc: NVRTC builtins not found beside %s: %s\n", path, dlerror());
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::fprintf(stderr, "libsimnvrtc: cannot load the real NVRTC: %s\n", dlerror());
    return;
  }
  for (int i = 0; i < kCount; ++i) {
    if (void* f = dlsym(h, kNames[i])) *simnvrtc_real[i] = f;
  }
}

template <typename F>
F real(Index i) {
  return reinterpret_cast<F>(*simnvrtc_real[i]);
}

// Programs whose compile asked for machine code (sm_XX): their CUBIN is PTX.
std::mutex g_mu;
std::unordered_set<nvrtcProgram> g_ptx_as_cubin;

// If `opt` (with `next` for the two-token form) names a real architecture,
// rewrites it to the virtual one and returns true.
bool rewrite_arch(std::string& opt, const char* next, std::string* next_out) {
  static const char* const kPrefixes[] = {"-arch=", "--gpu-architecture=", "-arch", "--gpu-architecture"};
  for (const char* prefix : kPrefixes) {
    const std::size_t n = std::strlen(prefix);
    if (opt.compare(0, n, prefix) != 0) continue;
    if (prefix[n - 1] == '=') {
      if (opt.compare(n, 3, "sm_") == 0) {
        opt.replace(n, 3, "compute_");
        return true;
      }
      return false;
    }
    if (opt.size() == n && next && std::strncmp(next, "sm_", 3) == 0) {
      *next_out = std::string("compute_") + (next + 3);
      return true;
    }
  }
  return false;
}

}  // namespace

// Forwarding stubs: a tail jump through the table keeps every argument and
// the return value exactly as the caller passed them, whatever the signature.
#define NVRTC_FN(name, kind) NVRTC_FN_##kind(name)
#define NVRTC_FN_CUSTOM(name)
#define NVRTC_FN_FORWARD(name)                                     \
  asm(".pushsection .text\n.globl " #name "\n.type " #name ",@function\n" #name \
      ":\n\tjmp *simnvrtc_real_" #name "(%rip)\n.size " #name ",.-" #name "\n.popsection\n");
#include "nvrtc_api.def"
#undef NVRTC_FN

EXPORT nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char* const* options) {
  std::vector<std::string> rewritten;
  rewritten.reserve(numOptions > 0 ? numOptions : 0);
  bool to_ptx = false;
  for (int i = 0; i < numOptions; ++i) {
    std::string opt = options[i] ? options[i] : "";
    std::string next_rewritten;
    const char* next = i + 1 < numOptions ? options[i + 1] : nullptr;
    if (rewrite_arch(opt, next, &next_rewritten)) {
      to_ptx = true;
      rewritten.push_back(opt);
      if (!next_rewritten.empty()) {
        rewritten.push_back(next_rewritten);
        ++i;
      }
      continue;
    }
    rewritten.push_back(std::move(opt));
  }
  std::vector<const char*> argv;
  argv.reserve(rewritten.size());
  for (auto& s : rewritten) argv.push_back(s.c_str());
  using Fn = nvrtcResult (*)(nvrtcProgram, int, const char* const*);
  nvrtcResult r = real<Fn>(k_nvrtcCompileProgram)(prog, int(argv.size()), argv.data());
  std::lock_guard<std::mutex> lock(g_mu);
  if (to_ptx && r == NVRTC_SUCCESS) {
    g_ptx_as_cubin.insert(prog);
  } else {
    g_ptx_as_cubin.erase(prog);
  }
  return r;
}

static bool ptx_as_cubin(nvrtcProgram prog) {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_ptx_as_cubin.count(prog) != 0;
}

EXPORT nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t* size) {
  if (ptx_as_cubin(prog)) return real<nvrtcResult (*)(nvrtcProgram, size_t*)>(k_nvrtcGetPTXSize)(prog, size);
  return real<nvrtcResult (*)(nvrtcProgram, size_t*)>(k_nvrtcGetCUBINSize)(prog, size);
}

EXPORT nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char* cubin) {
  if (ptx_as_cubin(prog)) return real<nvrtcResult (*)(nvrtcProgram, char*)>(k_nvrtcGetPTX)(prog, cubin);
  return real<nvrtcResult (*)(nvrtcProgram, char*)>(k_nvrtcGetCUBIN)(prog, cubin);
}

EXPORT nvrtcResult nvrtcDestroyProgram(nvrtcProgram* prog) {
  if (!prog) return NVRTC_ERROR_INVALID_PROGRAM;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_ptx_as_cubin.erase(*prog);
  }
  return real<nvrtcResult (*)(nvrtcProgram*)>(k_nvrtcDestroyProgram)(prog);
}
