#include "backend.h"

#include <dlfcn.h>

namespace sing::proxy {

Backend& backend() {
  static Backend b;
  return b;
}

bool Backend::load(const std::string& library, std::string& error) {
  // RTLD_DEEPBIND: the backend's own calls into itself must not be captured
  // by anything else exporting cu* in this process.
  handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!handle) {
    error = dlerror();
    return false;
  }
  path = library;
  for (int op = 0; op < wire::kDriverOpCount; ++op) fn[op] = dlsym(handle, wire::kDriverOpName[op]);
  if (!fn[wire::kOp_cuInit]) {
    error = library + " does not export cuInit: not a CUDA driver";
    return false;
  }
  return true;
}

}  // namespace sing::proxy
