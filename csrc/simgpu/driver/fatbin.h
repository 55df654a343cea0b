// Module images: PTX text, NVIDIA fatbin containers, ELF cubins.
#pragma once

#include "core.h"

#include <string>

namespace simgpu {

// Finds the PTX to run in a module image.  `size` is 0 when the API gives
// none (cuModuleLoadData): text is then read up to its NUL, a fatbin up to
// the size its header states.  On failure returns the CUresult a driver would
// (INVALID_IMAGE, NO_BINARY_FOR_GPU, NOT_SUPPORTED) with an explanation in `log`.
CUresult extract_ptx(const void* image, size_t size, std::string& ptx, std::string& log);

// Exposed for unit tests: decodes an LZ4 block (no frame) into exactly `out_size` bytes.
bool lz4_block_decode(const uint8_t* in, size_t in_size, uint8_t* out, size_t out_size);

}  // namespace simgpu
