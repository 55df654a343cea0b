// Packing kernelParams (or an `extra` buffer) with a function's parameter
// layout, shared by launches and kernel graph nodes: both send the packed
// bytes to the proxy, which passes them to its driver as one buffer.
#pragma once
#include <cstdint>
#include <vector>

#include "driver_api.h"

namespace sing::shim {

struct FunctionInfo;

// Checks what a driver checks for a launch of f with this shape and packs
// the parameters into *buf.  Returns the error the real driver would return.
CUresult pack_kernel_params(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared,
                            void** params, void** extra, std::vector<uint8_t>* buf, bool* has_params);

// The same in two steps, for a launch that writes its parameters straight
// into its ring record (no buffer in between): check_kernel_params checks
// everything and writes nothing; *info is f's layout, *packed the app's
// `extra` buffer if it gave one.  write_kernel_params then lays out
// info.param_bytes bytes at `out` (gaps zeroed).
CUresult check_kernel_params(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared,
                             void** params, void** extra, FunctionInfo** info, const void** packed);
void write_kernel_params(const FunctionInfo& info, void** params, const void* packed, uint8_t* out);

}  // namespace sing::shim
