// A miniature driver for the engine tests: host-allocated "device" memory,
// module loading with global binding, parameter packing and launches.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ptx/engine.h"

namespace simgpu::ptx::test {

// PTX text of tests/kernels/<name>.cu, or empty when it was not built.
std::string kernel_ptx(const std::string& name);

#define SIM_NEED_PTX(var, name)                                       \
  std::string var = ::simgpu::ptx::test::kernel_ptx(name);            \
  if (var.empty()) GTEST_SKIP() << "kernel " name " not built (nvcc missing)"

class Device {
 public:
  Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  ~Device();
  // Zero-filled allocation inside the launch's legal memory.
  void* alloc(size_t bytes, size_t align = 256);
  template <class T> T* alloc_n(size_t n) { return static_cast<T*>(alloc(n * sizeof(T))); }
  template <class T> T* upload(const std::vector<T>& v) {
    T* p = alloc_n<T>(v.size());
    std::memcpy(p, v.data(), v.size() * sizeof(T));
    return p;
  }
  MemoryView view();

 private:
  struct Block { uint8_t* p; size_t n; };
  std::vector<Block> blocks_;
  std::vector<uint64_t> begin_, end_;
};

class Args {
 public:
  template <class T> Args& add(const T& v) {
    vals_.emplace_back(reinterpret_cast<const uint8_t*>(&v), reinterpret_cast<const uint8_t*>(&v) + sizeof(T));
    return *this;
  }
  // Packs the values at the offsets the kernel declares.
  std::vector<uint8_t> pack(const KernelInfo& k) const;

 private:
  std::vector<std::vector<uint8_t>> vals_;
};

class Module {
 public:
  Module(Device& dev, const std::string& ptx);
  Program& program() { return *prog_; }
  bool ok() const { return prog_ != nullptr; }
  const std::string& error() const { return error_; }
  // Address of a module variable.
  void* global(const std::string& name);
  Outcome launch(const std::string& kernel, Dim3 grid, Dim3 block, const Args& args, uint32_t dyn_shared = 0,
                 bool cooperative = false);

 private:
  Device& dev_;
  std::unique_ptr<Program> prog_;
  std::string error_;
  std::vector<void*> globals_;
};

// A program that must load; fails the test otherwise.
#define SIM_LOAD(mod, dev, ptx)                   \
  ::simgpu::ptx::test::Module mod(dev, ptx);      \
  ASSERT_TRUE(mod.ok()) << mod.error()

#define SIM_EXPECT_OK(outcome)                                                   \
  do {                                                                           \
    auto _o = (outcome);                                                         \
    ASSERT_EQ(_o.fault, ::simgpu::ptx::Fault::None) << _o.detail;                \
  } while (0)

inline float bits_f(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline double bits_d(uint64_t u) { double f; std::memcpy(&f, &u, 8); return f; }
inline uint64_t d_bits(double f) { uint64_t u; std::memcpy(&u, &f, 8); return u; }

}  // namespace simgpu::ptx::test
