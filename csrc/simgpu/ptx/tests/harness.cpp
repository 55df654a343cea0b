#include "harness.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace simgpu::ptx::test {

std::string kernel_ptx(const std::string& name) {
#ifdef SING_PTX_KERNEL_DIR
  std::ifstream f(std::string(SING_PTX_KERNEL_DIR) + "/" + name + ".ptx");
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
#else
  (void)name;
  return {};
#endif
}

Device::~Device() {
  for (Block& b : blocks_) std::free(b.p);
}

void* Device::alloc(size_t bytes, size_t align) {
  size_t n = (std::max<size_t>(bytes, 1) + align - 1) / align * align;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(align, n));
  std::memset(p, 0, n);
  blocks_.push_back({p, bytes});
  return p;
}

MemoryView Device::view() {
  std::vector<Block> b = blocks_;
  std::sort(b.begin(), b.end(), [](const Block& x, const Block& y) { return x.p < y.p; });
  begin_.clear();
  end_.clear();
  for (const Block& x : b) {
    begin_.push_back(reinterpret_cast<uint64_t>(x.p));
    end_.push_back(reinterpret_cast<uint64_t>(x.p) + std::max<size_t>(x.n, 1));
  }
  return MemoryView{begin_.data(), end_.data(), begin_.size()};
}

std::vector<uint8_t> Args::pack(const KernelInfo& k) const {
  EXPECT_EQ(vals_.size(), k.params.size()) << "argument count for " << k.name;
  std::vector<uint8_t> buf(k.param_bytes, 0);
  for (size_t i = 0; i < vals_.size() && i < k.params.size(); ++i) {
    EXPECT_EQ(vals_[i].size(), k.params[i].size) << "size of argument " << i << " of " << k.name;
    std::memcpy(buf.data() + k.params[i].offset, vals_[i].data(), std::min<size_t>(vals_[i].size(), k.params[i].size));
  }
  return buf;
}

Module::Module(Device& dev, const std::string& ptx) : dev_(dev) {
  prog_ = Program::load(ptx, error_);
  if (!prog_) return;
  const auto& gs = prog_->globals();
  globals_.resize(gs.size(), nullptr);
  for (size_t i = 0; i < gs.size(); ++i) {
    if (gs[i].is_extern) continue;
    void* p = dev_.alloc(gs[i].size, std::max<uint32_t>(gs[i].align, 16));
    if (!gs[i].init.empty()) std::memcpy(p, gs[i].init.data(), gs[i].init.size());
    globals_[i] = p;
  }
  for (size_t i = 0; i < gs.size(); ++i)
    if (globals_[i]) prog_->bind_global(int(i), reinterpret_cast<uint64_t>(globals_[i]));
}

void* Module::global(const std::string& name) {
  int i = prog_->find_global(name);
  return i < 0 ? nullptr : globals_[size_t(i)];
}

Outcome Module::launch(const std::string& kernel, Dim3 grid, Dim3 block, const Args& args, uint32_t dyn_shared,
                       bool cooperative) {
  int k = prog_->find_kernel(kernel);
  if (k < 0) {
    ADD_FAILURE() << "no kernel " << kernel;
    return Outcome{Fault::LaunchFailed, 0, "no kernel"};
  }
  std::vector<uint8_t> params = args.pack(prog_->kernels()[size_t(k)]);
  Launch l;
  l.program = prog_.get();
  l.kernel = k;
  l.grid = grid;
  l.block = block;
  l.dynamic_shared_bytes = dyn_shared;
  l.params = params.data();
  l.cooperative = cooperative;
  l.memory = dev_.view();
  return prog_->run(l);
}

}  // namespace simgpu::ptx::test
