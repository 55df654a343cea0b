// What the shim knows about each function (or kernel) id: the parameter
// layout it needs to pack kernelParams, and the limits it checks so that a
// bad launch fails at the call, as on a real driver, although launches are
// fire-and-forget.
#pragma once
#include <atomic>
#include <cstdint>
#include <vector>

#include "driver_api.h"

namespace sing::shim {

struct FunctionInfo {
  uint64_t id = 0;
  uint32_t param_bytes = 0;
  uint32_t max_threads = 0;
  std::atomic<uint32_t> max_dynamic_shared{0};
  std::atomic<bool> alive{true};
  uint64_t owner = 0;  // module id, when known
  std::vector<std::pair<uint32_t, uint32_t>> params;  // {offset, size}
};

// The info for a function id, asking the proxy the first time.  Null with
// *error set when the id is unknown to the proxy.
FunctionInfo* function_info(uint64_t fn, CUresult* error);
// The id came from cuModuleGetFunction on `module`.
void function_owned_by(uint64_t fn, uint64_t module);
// The module is unloaded: its functions are gone.
void functions_unloaded(uint64_t module);

}  // namespace sing::shim
