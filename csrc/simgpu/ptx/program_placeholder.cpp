// Placeholder until the interpreter lands: every load is refused.
#include "ptx/engine.h"

namespace simgpu::ptx {

std::unique_ptr<Program> Program::load(std::string_view, std::string& error) {
  error = "PTX engine not built";
  return nullptr;
}

unsigned worker_count() { return 1; }
uint64_t instructions_retired() { return 0; }

}  // namespace simgpu::ptx
