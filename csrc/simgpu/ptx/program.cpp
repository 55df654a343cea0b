// Program::load and the module-variable bindings.
#include "ptx/program.h"

#include <cstring>

#include "ptx/ast.h"
#include "ptx/compile.h"

namespace simgpu::ptx {

std::unique_ptr<Program> Program::load(std::string_view ptx, std::string& error) {
  // Images handed to cuModuleLoadData are C strings; tolerate the terminator.
  while (!ptx.empty() && ptx.back() == '\0') ptx.remove_suffix(1);
  ast::Module m;
  if (!parse_module(ptx, m, error)) return nullptr;
  auto p = std::make_unique<ProgramImpl>();
  try {
    compile_module(m, p->ir);
  } catch (const CompileError& e) {
    error = e.line ? "line " + std::to_string(e.line) + ": " + e.msg : e.msg;
    return nullptr;
  } catch (const std::bad_alloc&) {
    error = "out of memory while compiling PTX";
    return nullptr;
  }
  p->init_bindings();
  return p;
}

int ProgramImpl::find_kernel(std::string_view name) const {
  for (size_t i = 0; i < ir.kernels.size(); ++i)
    if (ir.kernels[i].name == name) return int(i);
  return -1;
}

int ProgramImpl::find_global(std::string_view name) const {
  for (size_t i = 0; i < ir.globals.size(); ++i)
    if (ir.globals[i].name == name) return int(i);
  return -1;
}

// Binding patches two things: the constant images of functions that use the
// variable's address, and initializers of other variables that hold it
// (`.u64 p = generic(x)`), written straight into device memory - which is
// host memory in this process.  The driver copies `init` before binding.
void ProgramImpl::bind_global(int index, uint64_t address) {
  std::lock_guard<std::mutex> lk(mu_);
  if (index < 0 || size_t(index) >= bound_.size()) return;
  bound_[size_t(index)] = address;
  for (FuncIR& f : ir.funcs) {
    for (const ConstReloc& r : f.relocs) {
      if (r.var != uint32_t(index)) continue;
      uint64_t v = address + uint64_t(r.addend);
      for (int l = 0; l < 32; ++l) std::memcpy(&f.const_image[r.offset + l * r.width], &v, r.width);
    }
  }
  for (const DataReloc& r : ir.data_relocs) {
    if (r.holder != uint32_t(index) && r.target != uint32_t(index)) continue;
    uint64_t holder = bound_[r.holder], target = bound_[r.target];
    if (!holder || !target) continue;
    uint64_t v = target + uint64_t(r.addend);
    std::memcpy(reinterpret_cast<void*>(holder + r.offset), &v, r.width);
  }
}

}  // namespace simgpu::ptx
