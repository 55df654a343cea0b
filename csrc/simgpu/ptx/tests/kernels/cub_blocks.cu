// CUB block-level primitives (reduce, scan, radix sort, blocked load, warp scan).
#include <cub/cub.cuh>
extern "C" __global__ void cub_kernels(const int* in, int* out, float* fout) {
  using BR = cub::BlockReduce<int, 128>;
  using BS = cub::BlockScan<int, 128>;
  using RS = cub::BlockRadixSort<int, 128, 4>;
  using WS = cub::WarpScan<float>;
  using BL = cub::BlockLoad<int, 128, 4, cub::BLOCK_LOAD_TRANSPOSE>;
  __shared__ union { typename BR::TempStorage r; typename BS::TempStorage s; typename RS::TempStorage rs; typename WS::TempStorage ws[4]; typename BL::TempStorage bl; } tmp;
  int t = threadIdx.x;
  int v = in[t];
  int sum = BR(tmp.r).Sum(v);
  __syncthreads();
  int ex;
  BS(tmp.s).ExclusiveSum(v, ex);
  __syncthreads();
  int keys[4];
  BL(tmp.bl).Load(in, keys);
  __syncthreads();
  RS(tmp.rs).Sort(keys);
  __syncthreads();
  float f = float(v) * 0.5f, incl;
  WS(tmp.ws[t / 32]).InclusiveSum(f, incl);
  if (t == 0) out[0] = sum;
  out[1 + t] = ex;
  for (int k = 0; k < 4; ++k) out[200 + 4 * t + k] = keys[k];
  fout[t] = incl;
}
