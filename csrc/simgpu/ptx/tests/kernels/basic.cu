// Basic kernels: arithmetic, indexing, divergence, loops.
extern "C" __global__ void saxpy(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}

extern "C" __global__ void collatz(const unsigned* in, unsigned* steps, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned v = in[i], s = 0;
  while (v != 1) {
    v = (v & 1) ? 3 * v + 1 : v / 2;
    ++s;
    if (s > 1000) break;
  }
  steps[i] = s;
}

extern "C" __global__ void nested(const int* in, int* out) {
  int t = threadIdx.x;
  int v = in[t];
  int r = 0;
  if (v % 3 == 0) {
    if (v % 2 == 0) r = 1;
    else r = 2;
    for (int k = 0; k < (v & 7); ++k) {
      if (k == 5) break;
      r += k * v;
      if ((r ^ k) & 1) continue;
      r -= 1;
    }
  } else if (v % 3 == 1) {
    r = v * v;
    while (r > 100) { r -= 37; if (r == 50) return; }
  } else {
    switch (v & 3) {
      case 0: r = 10; break;
      case 1: r = 20; break;
      case 2: r = v << 2; break;
      default: r = -v;
    }
  }
  out[t] = r;
}

extern "C" __global__ void dims(unsigned* out) {
  unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  unsigned bid = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  unsigned* o = out + 4 * (bid * nt + tid);
  o[0] = threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16;
  o[1] = blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16;
  o[2] = blockDim.x | blockDim.y << 8 | blockDim.z << 16;
  o[3] = gridDim.x | gridDim.y << 8 | gridDim.z << 16;
}
