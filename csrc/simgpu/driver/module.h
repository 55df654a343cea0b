// Modules, functions and libraries.
#pragma once

#include "context.h"
#include "ptx/engine.h"

#include <string>
#include <vector>

namespace simgpu {

struct Module;
struct Library;

struct Function : Object {
  Function() : Object(Kind::Function) {}
  CUfunction handle() { return reinterpret_cast<CUfunction>(this); }

  Module* module = nullptr;  // owner; a Function handle's shared_ptr keeps the module alive
  int index = -1;
  const ptx::KernelInfo* info = nullptr;
  // cuFuncSetAttribute state.
  std::atomic<int> max_dynamic_shared{0};
  std::atomic<int> carveout{-1};
  std::atomic<int> cache_config{CU_FUNC_CACHE_PREFER_NONE};
  std::atomic<int> cluster_x{0}, cluster_y{0}, cluster_z{0};
  std::atomic<int> non_portable_cluster{0}, cluster_policy{0};
};

struct Module : Object, std::enable_shared_from_this<Module> {
  Module() : Object(Kind::Module) {}
  ~Module() override;
  CUmodule handle() { return reinterpret_cast<CUmodule>(this); }

  std::shared_ptr<Context> ctx;
  uint64_t ctx_id = 0;
  std::unique_ptr<ptx::Program> program;
  std::vector<std::unique_ptr<Function>> functions;
  struct Global {
    std::string name;
    uint64_t addr = 0;
    uint64_t size = 0;
  };
  std::vector<Global> globals;
  Library* library = nullptr;  // set for a library's per-context module (not registered as a handle)

  // A shared_ptr to one of this module's functions that keeps the module alive.
  std::shared_ptr<Function> function_ref(Function* f) { return std::shared_ptr<Function>(shared_from_this(), f); }
  Function* find_function(const char* name);
  const Global* find_global(const char* name) const;
};

// Loads PTX (already extracted from its image) into a context: parses it,
// allocates and initialises its globals, makes its functions.
CUresult load_module(Context& c, const std::string& ptx, std::string& log, std::shared_ptr<Module>& out);
// Registers a module's handle and its functions' handles (for cuModuleLoad*).
void publish_module(Context& c, const std::shared_ptr<Module>& m);

// A library: context-independent; loaded into a context on first use.
struct Kernel;
struct Library : Object, std::enable_shared_from_this<Library> {
  Library() : Object(Kind::Library) {}
  CUlibrary handle() { return reinterpret_cast<CUlibrary>(this); }

  std::string ptx;
  std::unique_ptr<ptx::Program> probe;  // parsed once for kernel names and counts
  std::vector<std::unique_ptr<Kernel>> kernels;
  std::mutex mu;
  struct PerContext {
    std::shared_ptr<Context> ctx;
    uint64_t ctx_id;
    std::shared_ptr<Module> module;
  };
  std::vector<PerContext> loaded;
  // The library's module in the context (loaded on first use).
  CUresult module_for(Context& c, std::shared_ptr<Module>& out);
};

struct Kernel : Object {
  Kernel() : Object(Kind::Kernel) {}
  CUkernel handle() { return reinterpret_cast<CUkernel>(this); }
  Library* library = nullptr;
  int index = -1;
  std::string name;
};

// cuLaunchKernel and friends accept CUfunction or CUkernel: the function to run in context c.
CUresult resolve_function(CUfunction f, Context* c, std::shared_ptr<Function>& out);

// Parses JIT options: fills the error/info log buffers and wall time on exit.
struct JitOptions {
  char* error_log = nullptr;
  size_t error_log_size = 0;
  int error_log_index = -1;
  char* info_log = nullptr;
  size_t info_log_size = 0;
  int info_log_index = -1;
  int wall_time_index = -1;
  CUresult parse(unsigned n, CUjit_option* options, void** values);
  void finish(void** values, const std::string& error, const std::string& info, float ms);

 private:
  std::vector<CUjit_option> sizes_;  // every option, to write outputs back by position
};

bool read_file(const char* path, std::string& out);

// Function attributes (function.cpp), shared by cuFunc* and cuKernel*.
CUresult func_get_attribute(const Function& f, int attr, int& out);
CUresult func_set_attribute(Function& f, int attr, int value);

}  // namespace simgpu
