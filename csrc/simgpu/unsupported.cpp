// A CUDA_ERROR_NOT_SUPPORTED fallback for every entry point of
// csrc/common/driver_api.def that the simulator does not implement.
//
// The fallbacks are weak aliases of one function, so a real definition
// anywhere else in the library wins at link time and nothing is listed twice.
// (Definitions must live in other files: here the alias is a definition.)
// On x86-64 the caller owns argument clean-up, so one parameterless function
// returning CUresult can stand in for any entry point.
#include "api.h"

extern "C" SIM_EXPORT CUresult sim_entry_not_supported() { return CUDA_ERROR_NOT_SUPPORTED; }

#pragma GCC diagnostic ignored "-Wattribute-alias"
#define SIM_STR2(x) #x
#define SIM_STR(x) SIM_STR2(x)
#define CU_FN(sym, base, ver, variant, policy) _Pragma(SIM_STR(weak sym = sim_entry_not_supported))
#include "driver_api.def"
#undef CU_FN
