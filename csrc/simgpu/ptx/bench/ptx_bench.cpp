// Interpreter throughput: thread-instructions per second on an
// arithmetic-heavy kernel and the time of a tiled 512x512x512 fp32 matmul.
// Prints one JSON object.  Usage: ptx_bench [kernel-dir] [--iters N]
//   --matmul-out FILE  also writes A, B and C (float32, row-major) to FILE
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ptx/engine.h"

using namespace simgpu::ptx;

namespace {

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU seconds used by the whole process (all worker threads).  On a shared
// machine, thread-instructions per CPU-second is the per-core rate.
double cpu() {
  rusage r;
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + 1e-6 * double(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
}

struct Rate {
  double wall, per_cpu;
};

struct Mem {
  std::vector<std::pair<uint64_t, uint64_t>> r;
  std::vector<uint64_t> b, e;
  void* alloc(size_t n) {
    void* p = std::aligned_alloc(256, (n + 255) / 256 * 256);
    std::memset(p, 0, n);
    r.push_back({uint64_t(p), uint64_t(p) + n});
    return p;
  }
  MemoryView view() {
    std::sort(r.begin(), r.end());
    b.clear();
    e.clear();
    for (auto& x : r) b.push_back(x.first), e.push_back(x.second);
    return MemoryView{b.data(), e.data(), b.size()};
  }
};

Outcome launch(const Program& p, const char* name, Dim3 grid, Dim3 block, const std::vector<uint8_t>& params, Mem& m) {
  Launch l;
  l.program = &p;
  l.kernel = p.find_kernel(name);
  l.grid = grid;
  l.block = block;
  l.params = params.data();
  l.memory = m.view();
  return p.run(l);
}

template <class... T>
std::vector<uint8_t> pack(const Program& p, const char* name, T... vals) {
  const KernelInfo& k = p.kernels()[size_t(p.find_kernel(name))];
  std::vector<uint8_t> buf(k.param_bytes);
  size_t i = 0;
  auto put = [&](auto v) { std::memcpy(buf.data() + k.params[i++].offset, &v, sizeof v); };
  (put(vals), ...);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
#ifdef SING_PTX_KERNEL_DIR
  dir = SING_PTX_KERNEL_DIR;
#endif
  int iters = 2000;
  std::string mm_out;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--matmul-out") && i + 1 < argc) mm_out = argv[++i];
    else dir = argv[i];
  }
  std::string ptx = read(dir + "/bench.ptx");
  std::string err;
  auto prog = Program::load(ptx, err);
  if (!prog) {
    std::fprintf(stderr, "ptx_bench: cannot load %s/bench.ptx: %s\n", dir.c_str(), err.c_str());
    return 1;
  }
  Mem mem;
  // Arithmetic throughput: one block (one worker), then enough blocks for all.
  auto arith = [&](unsigned blocks) {
    float* out = static_cast<float*>(mem.alloc(size_t(blocks) * 256 * 4));
    auto params = pack(*prog, "arith", out, iters);
    uint64_t i0 = instructions_retired();
    double t0 = now(), c0 = cpu();
    Outcome o = launch(*prog, "arith", {blocks}, {256}, params, mem);
    double dt = now() - t0, dc = cpu() - c0;
    if (o.fault != Fault::None) {
      std::fprintf(stderr, "arith failed: %s\n", o.detail.c_str());
      std::exit(1);
    }
    double n = double(instructions_retired() - i0);
    return Rate{n / dt, n / dc};
  };
  Rate single = arith(1);
  unsigned w = worker_count();
  Rate all = arith(8 * w);

  // Tiled matmul 512^3.
  const int n = 512;
  std::vector<float> A(size_t(n) * n), B(size_t(n) * n);
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : A) v = u(rng);
  for (auto& v : B) v = u(rng);
  float* dA = static_cast<float*>(mem.alloc(A.size() * 4));
  float* dB = static_cast<float*>(mem.alloc(B.size() * 4));
  float* dC = static_cast<float*>(mem.alloc(A.size() * 4));
  std::memcpy(dA, A.data(), A.size() * 4);
  std::memcpy(dB, B.data(), B.size() * 4);
  auto params = pack(*prog, "matmul_tiled", (const float*)dA, (const float*)dB, dC, n);
  uint64_t i0 = instructions_retired();
  double t0 = now(), c0 = cpu();
  Outcome o = launch(*prog, "matmul_tiled", {n / 16, n / 16}, {16, 16}, params, mem);
  double mm = now() - t0, mm_cpu = cpu() - c0;
  double mm_ips = double(instructions_retired() - i0) / mm;
  if (o.fault != Fault::None) {
    std::fprintf(stderr, "matmul failed: %s\n", o.detail.c_str());
    return 1;
  }
  // Spot-check against a double-precision host product.
  double maxerr = 0;
  for (int s = 0; s < 64; ++s) {
    int r = (s * 37) % n, c = (s * 101) % n;
    double ref = 0;
    for (int k = 0; k < n; ++k) ref += double(A[size_t(r) * n + k]) * B[size_t(k) * n + c];
    maxerr = std::max(maxerr, std::fabs(ref - dC[size_t(r) * n + c]));
  }
  if (!mm_out.empty()) {
    std::ofstream f(mm_out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(A.data()), std::streamsize(A.size() * 4));
    f.write(reinterpret_cast<const char*>(B.data()), std::streamsize(B.size() * 4));
    f.write(reinterpret_cast<const char*>(dC), std::streamsize(A.size() * 4));
  }
  std::printf(
      "{\"workers\": %u, \"arith_thread_inst_per_s_1worker\": %.4g, \"arith_thread_inst_per_s_all\": %.4g, "
      "\"arith_thread_inst_per_cpu_s_1worker\": %.4g, \"arith_thread_inst_per_cpu_s_all\": %.4g, "
      "\"matmul512_seconds\": %.4f, \"matmul512_cpu_seconds\": %.4f, \"matmul512_thread_inst_per_s\": %.4g, "
      "\"matmul512_max_abs_err_sampled\": %.3g}\n",
      w, single.wall, all.wall, single.per_cpu, all.per_cpu, mm, mm_cpu, mm_ips, maxerr);
  return maxerr < 1e-3 ? 0 : 2;
}
