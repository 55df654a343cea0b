// The shim's configuration: read once from SINGULARITY_* variables.
#pragma once
#include <cstdint>
#include <string>

namespace sing::shim {

struct Config {
  std::string socket;    // SINGULARITY_SOCKET: host daemon's proxy socket; empty = private proxy
  std::string backend;   // SINGULARITY_BACKEND: driver the private proxy runs on
  std::string proxy;     // SINGULARITY_PROXY: singproxy-server executable
  std::string job;       // SINGULARITY_JOB
  uint64_t va_base;      // SINGULARITY_VA_BASE: the job's device address range
  bool va_base_explicit; // set: exactly this range (a restored job); unset: first free slot
  uint64_t va_size;      // SINGULARITY_VA_SIZE
  uint64_t host_size;    // SINGULARITY_HOST_SIZE: shared host memory (pinned/mapped/managed)
  bool debug;            // SINGULARITY_DEBUG: log connection events to stderr
};

const Config& config();


}  // namespace sing::shim
