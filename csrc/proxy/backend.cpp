#include "backend.h"

#include <dlfcn.h>

namespace sing::proxy {

Backend& backend() {
  static Backend b;
  return b;
}

bool Backend::load(const std::string& library, std::string& error) {
  // Nothing else in the proxy exports cu*: the backend's calls into itself
  // bind to itself without RTLD_DEEPBIND (which sanitizers cannot run with).
  handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
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
