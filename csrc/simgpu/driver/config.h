// Simulator configuration, read once from SINGULARITY_SIM_* at cuInit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace simgpu {

struct Config {
  int devices = 1;                 // visible devices
  std::vector<uint64_t> memory;  // bytes, one per visible device
  // The simulated machine's device index behind each visible ordinal
  // (CUDA_VISIBLE_DEVICES), which fixes its identity (UUID, PCI bus).
  std::vector<int> physical;
  std::string name;              // the same for every device
  bool debug = false;
};

// Largest device memory the address layout can hold (see vaspace.h).
constexpr uint64_t kMaxDeviceMemory = uint64_t(512) << 30;
constexpr int kMaxDevices = 16;

// Parses the environment; on failure returns false with a message in `error`.
bool load_config(Config& out, std::string& error);

// Parses "80G", "512M", "1048576", "4k" (binary units).  False on garbage or overflow.
bool parse_size(const std::string& text, uint64_t& out);

}  // namespace simgpu
