// Device printf and assert.
#include <cassert>
#include <cstdio>

extern "C" __global__ void printer(int base, double x, const char* s) {
  int t = threadIdx.x;
  printf("t=%d u=%u x=%#x f=%.3f e=%e g=%g\n", t + base, 4000000000u + t, 255 * t, x * t, x, x / 3);
  if (t == 1) printf("str=%s c=%c ll=%lld w=[%5d] p=[%-4d] star=[%*d] pct=100%%\n", s, 'A' + t, -1234567890123ll, t, t, 3, 7);
}

extern "C" __global__ void asserter(const int* v) {
  int t = threadIdx.x;
  assert(v[t] != 3);
}
