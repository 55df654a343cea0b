// The simulated devices: identity, limits, memory accounting.
#pragma once

#include "config.h"
#include "core.h"
#include "vaspace.h"

#include <string>
#include <vector>

namespace simgpu {

struct Context;
struct MemPool;

// H100 SXM5 limits that launches, occupancy and attributes share.
namespace h100 {
constexpr int kCcMajor = 9, kCcMinor = 0;
constexpr int kSmCount = 132;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int kMaxBlockDimX = 1024, kMaxBlockDimY = 1024, kMaxBlockDimZ = 64;
constexpr int kMaxGridDimX = 2147483647, kMaxGridDimY = 65535, kMaxGridDimZ = 65535;
constexpr int kWarpSize = 32;
constexpr int kMaxThreadsPerSm = 2048;
constexpr int kMaxBlocksPerSm = 32;
constexpr int kRegsPerSm = 65536;
constexpr int kRegsPerBlock = 65536;
constexpr int kMaxRegsPerThread = 255;
constexpr int kRegAllocUnit = 256;                 // registers per warp are allocated in these units
constexpr int kSharedPerSm = 228 * 1024;
constexpr int kSharedPerBlockDefault = 48 * 1024;
constexpr int kSharedPerBlockOptin = 227 * 1024;
constexpr int kReservedSharedPerBlock = 1024;      // driver-reserved per resident block
constexpr int kConstMemory = 64 * 1024;
constexpr int kL2Bytes = 50 * 1024 * 1024;
constexpr int kClockKhz = 1980000;
constexpr int kMemClockKhz = 2619000;
constexpr int kBusWidth = 5120;
constexpr int kMaxPersistingL2 = 32440320;  // 30.9 MiB, as an H100 SXM reports
constexpr int kMaxClusterSize = 8;
}  // namespace h100

struct Device {
  int ordinal = 0;
  std::string name;
  uint64_t total_mem = 0;
  CUuuid uuid{};
  int pci_bus = 0;
  DeviceHeap heap;
  std::atomic<uint64_t> used{0};  // bytes charged against total_mem

  // Primary context: one persistent object per device (its handle never changes).
  std::mutex primary_mu;
  std::shared_ptr<Context> primary;
  int primary_refs = 0;
  unsigned primary_flags = 0;

  // Memory pools (pools.cpp).
  std::mutex pool_mu;
  std::shared_ptr<MemPool> default_pool;
  MemPool* current_pool = nullptr;  // null = the default pool

  // Graph memory footprint (cuDeviceGetGraphMemAttribute).
  std::atomic<uint64_t> graph_mem_used{0}, graph_mem_high{0};

  // Charges/uncharges device memory; false (nothing charged) past total_mem.
  bool charge(uint64_t bytes);
  void uncharge(uint64_t bytes) { used.fetch_sub(bytes, std::memory_order_acq_rel); }
};

extern Config g_config;
int device_count();
Device* device_at(int ordinal);  // null when out of range
// CUDA_ERROR_NOT_INITIALIZED / CUDA_ERROR_INVALID_DEVICE / success.
CUresult lookup_device(CUdevice d, Device** out);
// Value of one CUdevice_attribute; false for an unknown attribute.
bool device_attribute(const Device& dev, int attr, int& value);

}  // namespace simgpu
