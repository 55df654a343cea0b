// Kernels of the interpreter benchmark (ptx/bench) and of the matmul test.

// Arithmetic-heavy: a dependent chain of fp32 FMAs and integer LCG steps.
extern "C" __global__ void arith(float* out, int iters) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float a = i * 0.001f, b = 1.0001f, c = 0.5f;
  unsigned x = i;
  for (int k = 0; k < iters; ++k) {
    a = a * b + c;
    c = c * 0.999f - a * 0.0001f;
    x = x * 1664525u + 1013904223u;
    b = b + float(x & 1) * 1e-7f;
  }
  out[i] = a + b + c + float(x);
}

// C = A * B for n x n row-major matrices (n a multiple of TILE).
#define TILE 16
extern "C" __global__ void matmul_tiled(const float* A, const float* B, float* C, int n) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE];
  int tx = threadIdx.x, ty = threadIdx.y;
  int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
  float acc = 0.0f;
  for (int t = 0; t < n; t += TILE) {
    As[ty][tx] = A[row * n + t + tx];
    Bs[ty][tx] = B[(t + ty) * n + col];
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TILE; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  C[row * n + col] = acc;
}
