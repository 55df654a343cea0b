// Calls, recursion, function pointers, switch tables, exits, inter-warp waits.
struct Pair {
  int x;
  double y;
};

__device__ __noinline__ int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__device__ __noinline__ Pair combine(Pair a, Pair b, int k) {
  Pair r;
  r.x = a.x * k + b.x;
  r.y = a.y - b.y * k;
  return r;
}

__device__ __noinline__ int op_add(int v) { return v + 11; }
__device__ __noinline__ int op_mul(int v) { return v * 3; }
__device__ __noinline__ int op_neg(int v) { return -v; }
__device__ int (*const ops[3])(int) = {op_add, op_mul, op_neg};

__device__ __noinline__ int maybe_exit(int v) {
  if (v % 4 == 3) asm volatile("exit;");
  return v * 2;
}

__device__ __noinline__ int sum_to(int n) {
  int s = 0;
  for (int i = 0; i <= n; ++i) {
    if (i % 7 == 6) continue;
    s += i;
    if (s > 500) return -s;
  }
  return s;
}

extern "C" __global__ void calls(int* out, int n) {
  int t = threadIdx.x + blockIdx.x * blockDim.x;
  if (t >= n) return;
  int* o = out + t * 8;
  o[0] = fib(t % 16);
  Pair a{t, 1.5 * t}, b{3, 0.25};
  Pair c = combine(a, b, t % 5);
  o[1] = c.x;
  o[2] = int(c.y * 4.0);
  o[3] = ops[t % 3](t);                 // lanes call different functions
  o[4] = (t & 1) ? fib(t % 10) : -1;    // divergent direct call
  o[5] = sum_to(t * 3);
  o[6] = 99;
  o[6] = maybe_exit(t);                 // some lanes exit inside the callee
  o[7] = 1;
}

extern "C" __global__ void switcher(const int* in, int* out) {
  int t = threadIdx.x;
  int v = in[t], r;
  switch (v) {
    case 0: r = v + 100; break;
    case 1: r = v * 7; break;
    case 2: r = v - 3; break;
    case 3: r = v ^ 0x55; break;
    case 4: r = v << 3; break;
    case 5: r = v * v * v; break;
    case 6: r = 42; break;
    case 7: r = -v; break;
    case 8: r = v | 0x100; break;
    case 9: r = v * 1000; break;
    case 10: r = v + v; break;
    default: r = -1;
  }
  out[t] = r;
}

// brx.idx through an inline jump table (nvcc prefers compare chains).
extern "C" __global__ void jump_table(const int* in, int* out) {
  int t = threadIdx.x;
  unsigned idx = unsigned(in[t]) % 4;
  int r;
  asm volatile(
      "{\n"
      "$Ltab: .branchtargets $Lc0, $Lc1, $Lc2, $Lc3;\n"
      "  brx.idx %1, $Ltab;\n"
      "$Lc0: mov.u32 %0, 10; bra.uni $Lend;\n"
      "$Lc1: mov.u32 %0, 21; bra.uni $Lend;\n"
      "$Lc2: mov.u32 %0, 32; bra.uni $Lend;\n"
      "$Lc3: mov.u32 %0, 43;\n"
      "$Lend:\n"
      "}"
      : "=r"(r)
      : "r"(idx));
  out[t] = r + t;
}

extern "C" __global__ void producer_consumer(int* out) {
  // Warp 1 waits for a flag that warp 0 sets after a long loop; needs the
  // scheduler to run other warps while one spins.
  __shared__ volatile int flag;
  __shared__ volatile int value;
  int t = threadIdx.x;
  if (t == 0) flag = 0;
  __syncthreads();
  if (t / 32 == 0) {
    if (t == 0) {
      int acc = 0;
      for (int i = 0; i < 5000; ++i) acc += i;
      value = acc;
      __threadfence_block();
      flag = 1;
    }
  } else if (t == 32) {
    while (flag == 0) {
    }
    out[0] = value;
  }
}

extern "C" __global__ void trapper(int* out, int when) {
  if (threadIdx.x == when) __trap();
  out[threadIdx.x] = 1;
}

// A global spin lock taken by every thread: lanes of one warp contend with
// each other, which needs the lock holder to run while its siblings spin.
extern "C" __global__ void spin_lock(int* lock, volatile int* counter, int* order) {
  while (atomicCAS(lock, 0, 1) != 0) {
  }
  int v = *counter;
  order[blockIdx.x * blockDim.x + threadIdx.x] = v;
  *counter = v + 1;
  __threadfence();
  atomicExch(lock, 0);
}
