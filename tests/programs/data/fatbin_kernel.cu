// Source of the fatbin / cubin fixtures in this directory (see README.md here).
extern "C" __global__ void triple(int* v, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) v[i] *= 3;
}
__device__ int marker = 1234;
