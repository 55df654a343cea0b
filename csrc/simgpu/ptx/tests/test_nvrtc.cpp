// PTX produced by NVRTC (as cuda-python programs produce it) rather than by
// nvcc.  Uses the libnvrtc of the project's virtual environment when it is
// installed (`make build`); skipped otherwise.
#include <dlfcn.h>

#include <cstdlib>
#include <vector>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

const char* kSource = R"(
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
namespace cg = cooperative_groups;
extern "C" __global__ void block_sums(const float* in, float* out, int n) {
  __shared__ float warp_sums[32];
  auto block = cg::this_thread_block();
  auto warp = cg::tiled_partition<32>(block);
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = i < n ? in[i] : 0.0f;
  float s = cg::reduce(warp, v, cg::plus<float>());
  if (warp.thread_rank() == 0) warp_sums[warp.meta_group_rank()] = s;
  block.sync();
  if (threadIdx.x == 0) {
    float t = 0;
    for (int w = 0; w < (int)warp.meta_group_size(); ++w) t += warp_sums[w];
    out[blockIdx.x] = t;
  }
}
)";

using Create = int (*)(void**, const char*, const char*, int, const char* const*, const char* const*);
using Compile = int (*)(void*, int, const char* const*);
using Size = int (*)(void*, size_t*);
using Get = int (*)(void*, char*);
using Destroy = int (*)(void**);

std::string nvrtc_ptx(const char* src, std::string& why) {
  std::string dir = std::string(SING_SOURCE_DIR) + "/.venv/lib/python3.11/site-packages/nvidia/cu13/lib/";
  // NVRTC loads its builtins library by soname; preload it from the same place.
  dlopen((dir + "libnvrtc-builtins.so.13.0").c_str(), RTLD_NOW | RTLD_GLOBAL);
  void* h = dlopen((dir + "libnvrtc.so.13").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) h = dlopen("libnvrtc.so.13", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    why = "libnvrtc.so.13 not installed";
    return {};
  }
  auto create = reinterpret_cast<Create>(dlsym(h, "nvrtcCreateProgram"));
  auto compile = reinterpret_cast<Compile>(dlsym(h, "nvrtcCompileProgram"));
  auto size = reinterpret_cast<Size>(dlsym(h, "nvrtcGetPTXSize"));
  auto get = reinterpret_cast<Get>(dlsym(h, "nvrtcGetPTX"));
  auto destroy = reinterpret_cast<Destroy>(dlsym(h, "nvrtcDestroyProgram"));
  void* prog = nullptr;
  if (!create || create(&prog, src, "k.cu", 0, nullptr, nullptr) != 0) {
    why = "nvrtcCreateProgram failed";
    return {};
  }
  const char* opts[] = {"--gpu-architecture=compute_90", "-I/usr/local/cuda/include", "-I/usr/local/cuda/include/cccl"};
  std::string out;
  if (compile(prog, 3, opts) == 0) {
    size_t n = 0;
    size(prog, &n);
    out.resize(n);
    get(prog, out.data());
    out.resize(strnlen(out.c_str(), n));
  } else {
    why = "nvrtc could not compile the test source (CUDA headers missing?)";
  }
  destroy(&prog);
  return out;
}

TEST(Nvrtc, CooperativeGroupsReduction) {
  std::string why;
  std::string ptx = nvrtc_ptx(kSource, why);
  if (ptx.empty()) GTEST_SKIP() << why;
  Device dev;
  SIM_LOAD(mod, dev, ptx);
  const int n = 1000, blocks = 4;
  std::vector<float> in(n);
  for (int i = 0; i < n; ++i) in[i] = float(i % 17);
  float* out = dev.alloc_n<float>(blocks);
  SIM_EXPECT_OK(mod.launch("block_sums", {blocks}, {256}, Args().add(static_cast<const float*>(dev.upload(in))).add(out).add(n)));
  for (int b = 0; b < blocks; ++b) {
    float want = 0;
    for (int i = b * 256; i < std::min(n, b * 256 + 256); ++i) want += in[i];
    EXPECT_EQ(out[b], want) << b;  // small integers: exact in any order
  }
}

}  // namespace
}  // namespace simgpu::ptx::test
