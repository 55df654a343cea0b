// The Program implementation: compiled IR plus the addresses the driver bound.
#pragma once

#include <mutex>
#include <vector>

#include "ptx/engine.h"
#include "ptx/ir.h"

namespace simgpu::ptx {

class ProgramImpl final : public Program {
 public:
  ProgramIR ir;

  const std::vector<KernelInfo>& kernels() const override { return ir.kernels; }
  const std::vector<GlobalVar>& globals() const override { return ir.globals; }
  int find_kernel(std::string_view name) const override;
  int find_global(std::string_view name) const override;
  void bind_global(int index, uint64_t address) override;
  Outcome run(const Launch& launch) const override;   // runner.cpp

  uint64_t global_address(uint32_t var) const { return var < bound_.size() ? bound_[var] : 0; }

  void init_bindings() { bound_.assign(ir.globals.size(), 0); }

 private:
  std::vector<uint64_t> bound_;
  std::mutex mu_;
};

}  // namespace simgpu::ptx
