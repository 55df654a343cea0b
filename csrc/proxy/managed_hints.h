// Advice and prefetches of managed memory (cuMemAdvise, cuMemPrefetchAsync),
// kept by the proxy.
//
// Through the proxy, managed memory is shared host memory registered with the
// backend (docs/proxy.md): the backend does not know it as managed, so it
// would refuse advice on it.  Host memory is where such a block always is,
// hints cannot move it, so the proxy checks each call as a driver does,
// remembers what the app said and answers cuMemRangeGetAttribute(s) from
// that.  Per allocation, as libsimgpu keeps them; checkpoints carry them.
#pragma once
#include <cstdint>

#include "driver_api.h"

namespace sing::proxy {

struct ManagedHints {
  // Bit d of accessed_by: device d; this bit: the host (CU_DEVICE_CPU).
  static constexpr uint64_t kHostBit = 1ull << 63;
  static constexpr int kMaxDevices = 63;

  bool read_mostly = false;
  CUmemLocation preferred{CU_MEM_LOCATION_TYPE_INVALID, 0};
  uint64_t accessed_by = 0;
  CUmemLocation last_prefetch{CU_MEM_LOCATION_TYPE_INVALID, 0};

  bool is_default() const {
    return !read_mostly && preferred.type == CU_MEM_LOCATION_TYPE_INVALID && !accessed_by &&
           last_prefetch.type == CU_MEM_LOCATION_TYPE_INVALID;
  }
};

}  // namespace sing::proxy
