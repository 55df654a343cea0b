// Opcodes of forwarded driver calls: their index in driver_api.def.
#pragma once
#include <cstdint>

namespace sing::wire {

enum DriverOp : uint16_t {
#define CU_FN(sym, base, ver, variant, policy) kOp_##sym,
#include "driver_api.def"
#undef CU_FN
  kDriverOpCount
};

inline constexpr const char* kDriverOpName[] = {
#define CU_FN(sym, base, ver, variant, policy) #sym,
#include "driver_api.def"
#undef CU_FN
};

enum class Policy : uint8_t { LOCAL, SYNC, ASYNC, DESTROY, SHIM, PROXY, CUSTOM, UNSUPPORTED };

inline constexpr Policy kDriverOpPolicy[] = {
#define CU_FN(sym, base, ver, variant, policy) Policy::policy,
#include "driver_api.def"
#undef CU_FN
};

}  // namespace sing::wire
