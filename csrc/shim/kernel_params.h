// Packing kernelParams (or an `extra` buffer) with a function's parameter
// layout, shared by launches and kernel graph nodes: both send the packed
// bytes to the proxy, which passes them to its driver as one buffer.
#pragma once
#include <cstdint>
#include <vector>

#include "driver_api.h"

namespace sing::shim {

// Checks what a driver checks for a launch of f with this shape and packs
// the parameters into *buf.  Returns the error the real driver would return.
CUresult pack_kernel_params(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared,
                            void** params, void** extra, std::vector<uint8_t>* buf, bool* has_params);

}  // namespace sing::shim
