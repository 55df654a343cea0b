"""Train a small MLP with SGD, written with cuda-python exactly as for a real GPU.

Nothing here knows about Singularity: it finds the driver as every cuda-python
program does, compiles its kernels with NVRTC for the device it sees, and runs
them.  Under `singularity sim` the device is the simulated GPU; under
`singularity run` every driver call goes through the proxy, which can
checkpoint, move and restore the job without the program noticing.

What it exercises: NVRTC compile to a CUBIN for the device's own architecture,
several kernels (tiled matmuls, ReLU, softmax cross-entropy, a deterministic
reduction, SGD), two streams (one computes, one uploads the next batch from
pinned host memory), events ordering the two, and pinned buffers.

Every reduction runs in a fixed order, so the losses and the final weights are
bit-for-bit reproducible: it prints the loss of each step and a SHA-256 digest
of the final weights.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import sys
import time

import numpy as np
from cuda.bindings import driver as cu
from cuda.bindings import nvrtc

KERNELS = r"""
#define TILE 16

// C[M,N] = A[M,K] * op(B) (+ bias[N]).  B is [N,K] when transB, else [K,N].
extern "C" __global__ void matmul(const float* A, const float* B, const float* bias, float* C,
                                  int M, int N, int K, int transB) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE + 1];
    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int t = 0; t < K; t += TILE) {
        int ak = t + threadIdx.x;
        As[threadIdx.y][threadIdx.x] = (row < M && ak < K) ? A[row * K + ak] : 0.0f;
        int bk = t + threadIdx.y;
        float b = 0.0f;
        if (col < N && bk < K) b = transB ? B[col * K + bk] : B[bk * N + col];
        Bs[threadIdx.y][threadIdx.x] = b;
        __syncthreads();
        #pragma unroll
        for (int k = 0; k < TILE; ++k) acc = fmaf(As[threadIdx.y][k], Bs[k][threadIdx.x], acc);
        __syncthreads();
    }
    if (row < M && col < N) C[row * N + col] = acc + (bias ? bias[col] : 0.0f);
}

// G[N,K] = D[M,N]^T * X[M,K]: the weight gradient, summed over the batch in order.
extern "C" __global__ void matmul_tn(const float* D, const float* X, float* G, int M, int N, int K) {
    int n = blockIdx.y * blockDim.y + threadIdx.y;
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N || k >= K) return;
    float acc = 0.0f;
    for (int m = 0; m < M; ++m) acc = fmaf(D[m * N + n], X[m * K + k], acc);
    G[n * K + k] = acc;
}

// db[N] = sum over rows of D[M,N].
extern "C" __global__ void column_sum(const float* D, float* db, int M, int N) {
    int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    float acc = 0.0f;
    for (int m = 0; m < M; ++m) acc += D[m * N + n];
    db[n] = acc;
}

extern "C" __global__ void relu(const float* X, float* Y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) Y[i] = fmaxf(X[i], 0.0f);
}

// dX = dY where the forward input was positive.
extern "C" __global__ void relu_backward(const float* X, const float* dY, float* dX, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dX[i] = X[i] > 0.0f ? dY[i] : 0.0f;
}

// One thread per row: softmax, cross-entropy loss, and d(mean loss)/d(logits).
extern "C" __global__ void softmax_xent(const float* logits, const int* labels, float* loss_rows,
                                        float* dlogits, int M, int N) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= M) return;
    const float* z = logits + r * N;
    float mx = z[0];
    for (int j = 1; j < N; ++j) mx = fmaxf(mx, z[j]);
    float s = 0.0f;
    for (int j = 0; j < N; ++j) s += expf(z[j] - mx);
    int y = labels[r];
    loss_rows[r] = logf(s) - (z[y] - mx);
    for (int j = 0; j < N; ++j) {
        float p = expf(z[j] - mx) / s;
        dlogits[r * N + j] = (p - (j == y ? 1.0f : 0.0f)) / M;
    }
}

// Mean of n values by one block, tree-reduced in a fixed order.
extern "C" __global__ void mean(const float* x, float* out, int n) {
    extern __shared__ float part[];
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) *out = part[0] / n;
}

extern "C" __global__ void sgd(float* w, const float* g, float lr, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) w[i] -= lr * g[i];
}
"""


def check(result):
    """cuda-python returns (err, *values); raise on any error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if isinstance(err, cu.CUresult) and err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"CUDA error {err.name}: {cu.cuGetErrorString(err)[1].decode()}")
    if isinstance(err, nvrtc.nvrtcResult) and err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"NVRTC error {err.name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def compile_kernels(device) -> bytes:
    major = check(cu.cuDeviceGetAttribute(cu.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device))
    minor = check(cu.cuDeviceGetAttribute(cu.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device))
    prog = check(nvrtc.nvrtcCreateProgram(KERNELS.encode(), b"train.cu", 0, [], []))
    opts = [f"--gpu-architecture=sm_{major}{minor}".encode(), b"--std=c++17"]
    err, = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        size = check(nvrtc.nvrtcGetProgramLogSize(prog))
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        raise RuntimeError("NVRTC failed:\n" + log.decode(errors="replace"))
    size = check(nvrtc.nvrtcGetCUBINSize(prog))
    cubin = b" " * size
    check(nvrtc.nvrtcGetCUBIN(prog, cubin))
    check(nvrtc.nvrtcDestroyProgram(prog))
    return cubin


class Kernel:
    """A kernel and the ctypes types of its arguments."""

    def __init__(self, module, name: str, types: tuple):
        self.fn = check(cu.cuModuleGetFunction(module, name.encode()))
        self.types = types

    def __call__(self, grid, block, stream, *args, shared: int = 0):
        values = [t(int(a) if t is ctypes.c_void_p else a) for t, a in zip(self.types, args, strict=True)]
        ptrs = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        check(cu.cuLaunchKernel(self.fn, *grid, *block, shared, stream, ctypes.addressof(ptrs), 0))


P, I, F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float


def cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--step-delay", type=float, default=0.0,
                    help="seconds to sleep after each step (gives an operator time to checkpoint)")
    args = ap.parse_args()

    n_in, n_hidden, n_out, batch = 32, args.hidden, 8, args.batch
    n_batches = 8

    # Deterministic synthetic data: labels from a fixed random linear teacher.
    rng = np.random.default_rng(args.seed)
    data = rng.standard_normal((n_batches, batch, n_in), dtype=np.float32)
    teacher = rng.standard_normal((n_in, n_out), dtype=np.float32)
    labels = np.argmax(data @ teacher, axis=-1).astype(np.int32)
    w1 = (rng.standard_normal((n_hidden, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)
    w2 = (rng.standard_normal((n_out, n_hidden)) * np.sqrt(2.0 / n_hidden)).astype(np.float32)

    check(cu.cuInit(0))
    device = check(cu.cuDeviceGet(0))
    name = check(cu.cuDeviceGetName(64, device)).split(b"\0")[0].decode()
    ctx = check(cu.cuDevicePrimaryCtxRetain(device))
    check(cu.cuCtxSetCurrent(ctx))
    print(f"device 0: {name}", flush=True)

    module = check(cu.cuModuleLoadData(compile_kernels(device)))
    matmul = Kernel(module, "matmul", (P, P, P, P, I, I, I, I))
    matmul_tn = Kernel(module, "matmul_tn", (P, P, P, I, I, I))
    column_sum = Kernel(module, "column_sum", (P, P, I, I))
    relu = Kernel(module, "relu", (P, P, I))
    relu_backward = Kernel(module, "relu_backward", (P, P, P, I))
    softmax_xent = Kernel(module, "softmax_xent", (P, P, P, P, I, I))
    mean = Kernel(module, "mean", (P, P, I))
    sgd = Kernel(module, "sgd", (P, P, F, I))

    compute = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
    upload = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))

    def alloc(nbytes: int):
        return check(cu.cuMemAlloc(nbytes))

    f32 = 4
    # Pinned staging for the whole dataset, and for the loss read back each step.
    host_x = check(cu.cuMemAllocHost(data.nbytes))
    host_y = check(cu.cuMemAllocHost(labels.nbytes))
    ctypes.memmove(host_x, data.ctypes.data, data.nbytes)
    ctypes.memmove(host_y, labels.ctypes.data, labels.nbytes)
    host_loss = check(cu.cuMemAllocHost(f32))

    # Two input slots: the upload stream fills one while the compute stream uses the other.
    x_slot = [alloc(batch * n_in * f32) for _ in range(2)]
    y_slot = [alloc(batch * 4) for _ in range(2)]
    uploaded = [check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING)) for _ in range(2)]
    consumed = [check(cu.cuEventCreate(cu.CUevent_flags.CU_EVENT_DISABLE_TIMING)) for _ in range(2)]

    d_w1, d_b1 = alloc(w1.nbytes), alloc(n_hidden * f32)
    d_w2, d_b2 = alloc(w2.nbytes), alloc(n_out * f32)
    check(cu.cuMemcpyHtoD(d_w1, w1.ctypes.data, w1.nbytes))
    check(cu.cuMemcpyHtoD(d_w2, w2.ctypes.data, w2.nbytes))
    check(cu.cuMemsetD32(d_b1, 0, n_hidden))
    check(cu.cuMemsetD32(d_b2, 0, n_out))
    # The streams are non-blocking: they do not wait for the legacy stream, where the memsets
    # above may still be running (cuMemset is asynchronous to the host on device memory).
    check(cu.cuCtxSynchronize())
    h_pre, h_act = alloc(batch * n_hidden * f32), alloc(batch * n_hidden * f32)
    logits, dlogits = alloc(batch * n_out * f32), alloc(batch * n_out * f32)
    loss_rows, loss = alloc(batch * f32), alloc(f32)
    g_w1, g_b1 = alloc(w1.nbytes), alloc(n_hidden * f32)
    g_w2, g_b2 = alloc(w2.nbytes), alloc(n_out * f32)
    d_act, d_pre = alloc(batch * n_hidden * f32), alloc(batch * n_hidden * f32)

    def upload_batch(step: int) -> None:
        slot, b = step % 2, step % n_batches
        check(cu.cuStreamWaitEvent(upload, consumed[slot], 0))
        check(cu.cuMemcpyHtoDAsync(x_slot[slot], int(host_x) + b * batch * n_in * f32, batch * n_in * f32, upload))
        check(cu.cuMemcpyHtoDAsync(y_slot[slot], int(host_y) + b * batch * 4, batch * 4, upload))
        check(cu.cuEventRecord(uploaded[slot], upload))

    for slot in range(2):  # nothing consumed yet
        check(cu.cuEventRecord(consumed[slot], compute))
    upload_batch(0)
    t0 = time.perf_counter()
    for step in range(args.steps):
        slot = step % 2
        x, y = x_slot[slot], y_slot[slot]
        check(cu.cuStreamWaitEvent(compute, uploaded[slot], 0))
        if step + 1 < args.steps:
            upload_batch(step + 1)
        s = compute
        # forward
        matmul((cdiv(n_hidden, 16), cdiv(batch, 16), 1), (16, 16, 1), s, x, d_w1, d_b1, h_pre,
               batch, n_hidden, n_in, 1)
        relu((cdiv(batch * n_hidden, 128), 1, 1), (128, 1, 1), s, h_pre, h_act, batch * n_hidden)
        matmul((cdiv(n_out, 16), cdiv(batch, 16), 1), (16, 16, 1), s, h_act, d_w2, d_b2, logits,
               batch, n_out, n_hidden, 1)
        softmax_xent((cdiv(batch, 64), 1, 1), (64, 1, 1), s, logits, y, loss_rows, dlogits, batch, n_out)
        mean((1, 1, 1), (128, 1, 1), s, loss_rows, loss, batch, shared=128 * f32)
        # backward
        matmul_tn((cdiv(n_hidden, 16), cdiv(n_out, 16), 1), (16, 16, 1), s, dlogits, h_act, g_w2,
                  batch, n_out, n_hidden)
        column_sum((1, 1, 1), (64, 1, 1), s, dlogits, g_b2, batch, n_out)
        matmul((cdiv(n_hidden, 16), cdiv(batch, 16), 1), (16, 16, 1), s, dlogits, d_w2, 0, d_act,
               batch, n_hidden, n_out, 0)
        relu_backward((cdiv(batch * n_hidden, 128), 1, 1), (128, 1, 1), s, h_pre, d_act, d_pre, batch * n_hidden)
        check(cu.cuEventRecord(consumed[slot], s))
        matmul_tn((cdiv(n_in, 16), cdiv(n_hidden, 16), 1), (16, 16, 1), s, d_pre, x, g_w1, batch, n_hidden, n_in)
        column_sum((cdiv(n_hidden, 64), 1, 1), (64, 1, 1), s, d_pre, g_b1, batch, n_hidden)
        # update
        for w, g, n in ((d_w1, g_w1, w1.size), (d_b1, g_b1, n_hidden), (d_w2, g_w2, w2.size), (d_b2, g_b2, n_out)):
            sgd((cdiv(n, 128), 1, 1), (128, 1, 1), s, w, g, args.lr, n)
        check(cu.cuMemcpyDtoHAsync(host_loss, loss, f32, s))
        check(cu.cuStreamSynchronize(s))
        value = ctypes.c_float.from_address(int(host_loss)).value
        print(f"step {step:4d} loss {value:.6f}", flush=True)
        if args.step_delay:
            time.sleep(args.step_delay)
    elapsed = time.perf_counter() - t0

    digest = hashlib.sha256()
    for d, n in ((d_w1, w1.size), (d_b1, n_hidden), (d_w2, w2.size), (d_b2, n_out)):
        out = np.empty(n, dtype=np.float32)
        check(cu.cuMemcpyDtoH(out.ctypes.data, d, out.nbytes))
        digest.update(out.tobytes())
    print(f"digest {digest.hexdigest()}", flush=True)
    print(f"{args.steps} steps in {elapsed:.4f} s", file=sys.stderr)  # 4 places: benchmarks/overhead.py compares runs of ~1 s
    check(cu.cuCtxSynchronize())
    check(cu.cuModuleUnload(module))
    check(cu.cuDevicePrimaryCtxRelease(device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
