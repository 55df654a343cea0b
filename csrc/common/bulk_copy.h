// A memcpy for bulk host copies (pageable staging, the simulated device's
// copies) that steers around a slow path of glibc's memcpy.
//
// glibc (2.36 here) copies from 2 KiB up to about the shared cache size with
// `rep movsb` on CPUs with ERMS/FSRM.  On this project's AMD EPYC VMs that runs
// at ~2 GB/s instead of 25-40 GB/s whenever (dst - src) mod 64 is 1..31,
// whatever the absolute alignment (measured at 4 KiB, 64 KiB and 256 KiB,
// every skew 0..63; skews 0 and 32..63 are fast).  A staged copy into an
// app's malloc'd buffer (16 bytes into a page) from a page-aligned stage slot
// is exactly that case.  Those copies go through a plain 16-byte vector loop
// instead (15-45 GB/s at every skew); all others stay with memcpy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace sing {

inline void bulk_copy(void* dst, const void* src, size_t n) {
#if !defined(__x86_64__)
  std::memcpy(dst, src, n);
#else
  const uintptr_t skew = (reinterpret_cast<uintptr_t>(dst) - reinterpret_cast<uintptr_t>(src)) & 63;
  if (n < 2048 || n >= (4u << 20) || skew == 0 || skew >= 32) {
    std::memcpy(dst, src, n);
    return;
  }
  auto* d = static_cast<uint8_t*>(dst);
  auto* s = static_cast<const uint8_t*>(src);
  // Align the destination: split stores cost more than split loads.
  const size_t head = (64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63;
  std::memcpy(d, s, head);
  d += head;
  s += head;
  n -= head;
  for (; n >= 64; n -= 64, d += 64, s += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_store_si128(reinterpret_cast<__m128i*>(d), a);
    _mm_store_si128(reinterpret_cast<__m128i*>(d + 16), b);
    _mm_store_si128(reinterpret_cast<__m128i*>(d + 32), c);
    _mm_store_si128(reinterpret_cast<__m128i*>(d + 48), e);
  }
  std::memcpy(d, s, n);
#endif
}

}  // namespace sing
