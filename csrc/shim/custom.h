// Hand-written entry points (policies LOCAL, SHIM and CUSTOM in
// driver_api.def): declared here from the list, defined in custom_*.cpp.  A
// missing definition is a link error, so the list and the code cannot drift.
#pragma once
#include "driver_api.h"

namespace sing::shim::custom {

#define SHIM_DECL_LOCAL(sym) decltype(::sym) sym;
#define SHIM_DECL_SHIM(sym) decltype(::sym) sym;
#define SHIM_DECL_CUSTOM(sym) decltype(::sym) sym;
#define SHIM_DECL_SYNC(sym)
#define SHIM_DECL_ASYNC(sym)
#define SHIM_DECL_DESTROY(sym)
#define SHIM_DECL_PROXY(sym)
#define SHIM_DECL_UNSUPPORTED(sym)
#define CU_FN(sym, base, ver, variant, policy) SHIM_DECL_##policy(sym)
#include "driver_api.def"
#undef CU_FN

}  // namespace sing::shim::custom
