// A backstop for programs that load NVIDIA's driver by absolute path
// (dlopen("/usr/lib/x86_64-linux-gnu/libcuda.so.1")): glibc would load the
// real file beside the shim, and the program would bypass the proxy.  Such a
// load is answered with the shim itself.
//
// dlopen is interposed by an assembly stub that tail-jumps into glibc: the
// return address glibc sees (and uses to pick the caller's RUNPATH and
// namespace) stays the program's, so every other load behaves exactly as
// without the shim.
#include <dlfcn.h>

#include <cstring>

#include "log.h"

extern "C" {

__attribute__((visibility("hidden"))) void* shim_real_dlopen = nullptr;

// Returns the file glibc should open: `file`, or the shim's own path when
// `file` names a real CUDA driver.
__attribute__((visibility("hidden"))) const char* shim_dlopen_redirect(const char* file) {
  if (!shim_real_dlopen) shim_real_dlopen = dlsym(RTLD_NEXT, "dlopen");
  if (!file || !std::strchr(file, '/')) return file;
  const char* base = std::strrchr(file, '/') + 1;
  if (std::strncmp(base, "libcuda.so", 10) != 0) return file;
  static const char* self = [] {
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&shim_dlopen_redirect), &info);
    return info.dli_fname;
  }();
  if (!self || std::strcmp(self, file) == 0) return file;
  sing::shim::log_debug("dlopen(\"%s\") answered with the shim", file);
  return self;
}

}  // extern "C"

// rdi = file, esi = mode.  Keep both across the helper call (stack stays
// 16-byte aligned: 8 (return address) + 16 + 8), then jump to glibc.
asm(R"(
.pushsection .text
.globl dlopen
.type dlopen,@function
.p2align 4
dlopen:
    push %rdi
    push %rsi
    sub $8, %rsp
    call shim_dlopen_redirect
    add $8, %rsp
    pop %rsi
    pop %rdi
    mov %rax, %rdi
    jmp *shim_real_dlopen(%rip)
.size dlopen,.-dlopen
.popsection
)");
