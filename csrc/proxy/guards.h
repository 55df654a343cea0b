// Device-range checks for generically forwarded calls that take device
// addresses: a client may only touch its own memory (the job's device range
// or its shared host range), never another client's.  Checked after decoding,
// before the backend runs the call.
#pragma once
#include <tuple>

#include "client.h"
#include "wire/opcodes.h"

namespace sing::proxy {

// Inside one live allocation of this client (heap allocation, app VMM
// mapping, or shared host block), as a driver checks a copy's bounds.
inline bool addressable(Client& c, uint64_t p, uint64_t n) {
  if (n == 0) return true;
  return c.valid_range(p, n);
}

template <uint16_t Op>
struct Guard {
  template <class Args>
  static CUresult check(Client&, Args&) { return CUDA_SUCCESS; }
};

// Bytes spanned by a 2D memset: pitch * (height - 1) + width * element.
inline uint64_t span_2d(uint64_t pitch, uint64_t width, uint64_t height, uint64_t elem) {
  if (height == 0 || width == 0) return 0;
  return pitch * (height - 1) + width * elem;
}

#define SING_GUARD(op, body)                                  \
  template <>                                                 \
  struct Guard<wire::kOp_##op> {                              \
    template <class Args>                                     \
    static CUresult check(Client& c, Args& a) {               \
      return (body) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; \
    }                                                         \
  };

#define SING_MEMSET(op, elem) SING_GUARD(op, addressable(c, std::get<0>(a).v, uint64_t(std::get<2>(a).v) * (elem)))
#define SING_MEMSET2D(op, elem)                                                                           \
  SING_GUARD(op, addressable(c, std::get<0>(a).v,                                                        \
                             span_2d(std::get<1>(a).v, std::get<3>(a).v, std::get<4>(a).v, (elem))))
#define SING_DTOD(op) \
  SING_GUARD(op, addressable(c, std::get<0>(a).v, std::get<2>(a).v) && addressable(c, std::get<1>(a).v, std::get<2>(a).v))
#define SING_PEER(op) \
  SING_GUARD(op, addressable(c, std::get<0>(a).v, std::get<4>(a).v) && addressable(c, std::get<2>(a).v, std::get<4>(a).v))
#define SING_VALUE(op, bytes) SING_GUARD(op, addressable(c, std::get<1>(a).v, (bytes)))

SING_MEMSET(cuMemsetD8_v2, 1) SING_MEMSET(cuMemsetD8_v2_ptds, 1)
SING_MEMSET(cuMemsetD16_v2, 2) SING_MEMSET(cuMemsetD16_v2_ptds, 2)
SING_MEMSET(cuMemsetD32_v2, 4) SING_MEMSET(cuMemsetD32_v2_ptds, 4)
SING_MEMSET(cuMemsetD8Async, 1) SING_MEMSET(cuMemsetD8Async_ptsz, 1)
SING_MEMSET(cuMemsetD16Async, 2) SING_MEMSET(cuMemsetD16Async_ptsz, 2)
SING_MEMSET(cuMemsetD32Async, 4) SING_MEMSET(cuMemsetD32Async_ptsz, 4)
SING_MEMSET2D(cuMemsetD2D8_v2, 1) SING_MEMSET2D(cuMemsetD2D8_v2_ptds, 1)
SING_MEMSET2D(cuMemsetD2D16_v2, 2) SING_MEMSET2D(cuMemsetD2D16_v2_ptds, 2)
SING_MEMSET2D(cuMemsetD2D32_v2, 4) SING_MEMSET2D(cuMemsetD2D32_v2_ptds, 4)
SING_MEMSET2D(cuMemsetD2D8Async, 1) SING_MEMSET2D(cuMemsetD2D8Async_ptsz, 1)
SING_MEMSET2D(cuMemsetD2D16Async, 2) SING_MEMSET2D(cuMemsetD2D16Async_ptsz, 2)
SING_MEMSET2D(cuMemsetD2D32Async, 4) SING_MEMSET2D(cuMemsetD2D32Async_ptsz, 4)
SING_DTOD(cuMemcpyDtoD_v2) SING_DTOD(cuMemcpyDtoD_v2_ptds)
SING_DTOD(cuMemcpyDtoDAsync_v2) SING_DTOD(cuMemcpyDtoDAsync_v2_ptsz)
SING_PEER(cuMemcpyPeer) SING_PEER(cuMemcpyPeer_ptds)
SING_PEER(cuMemcpyPeerAsync) SING_PEER(cuMemcpyPeerAsync_ptsz)
SING_VALUE(cuStreamWriteValue32_v2, 4) SING_VALUE(cuStreamWriteValue32_v2_ptsz, 4)
SING_VALUE(cuStreamWaitValue32_v2, 4) SING_VALUE(cuStreamWaitValue32_v2_ptsz, 4)
SING_VALUE(cuStreamWriteValue64_v2, 8) SING_VALUE(cuStreamWriteValue64_v2_ptsz, 8)
SING_VALUE(cuStreamWaitValue64_v2, 8) SING_VALUE(cuStreamWaitValue64_v2_ptsz, 8)
SING_VALUE(cuStreamAttachMemAsync, 1) SING_VALUE(cuStreamAttachMemAsync_ptsz, 1)

#undef SING_GUARD
#undef SING_MEMSET
#undef SING_MEMSET2D
#undef SING_DTOD
#undef SING_PEER
#undef SING_VALUE

}  // namespace sing::proxy
