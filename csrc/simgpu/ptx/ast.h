// The parsed form of a PTX module: syntax only, nothing resolved yet.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ptx/types.h"

namespace simgpu::ptx::ast {

struct Operand {
  enum Kind : uint8_t {
    Name,     // register, symbol, label or function: `name`
    Int,      // integer literal (ival, two's complement)
    Float,    // floating literal (fval; f32/f64 hex flags as written)
    Mem,      // [name+off], [off]; `name` empty when absolute
    Vec,      // {a, b, ...}
    Sink,     // _
    List,     // (a, b, ...) in call
  };
  Kind kind = Name;
  bool neg = false;          // !%p
  bool f32_hex = false, f64_hex = false;
  std::string name;
  std::string name2;         // second half of `%r|%p`
  int64_t ival = 0;          // Int value, or Mem/Name offset (name+off)
  double fval = 0;
  std::vector<Operand> elems;  // Vec / List
};

struct Instr {
  uint32_t line = 0;
  std::string guard;          // predicate register, empty when unguarded
  bool guard_neg = false;
  std::string op;             // "add"
  std::vector<std::string> mods;  // {".s32"}, in order written
  std::vector<Operand> ops;
  std::string text;           // as written, for diagnostics
};

// One initializer element of a variable: a number or the address of a symbol.
struct InitItem {
  enum Kind : uint8_t { Int, Float, Addr };
  Kind kind = Int;
  bool generic = false;       // generic(sym)
  uint64_t ival = 0;
  double fval = 0;
  bool f32_hex = false, f64_hex = false;
  std::string sym;
  int64_t offset = 0;
};

enum class VarSpace : uint8_t { Reg, Global, Const, Shared, Local, Param };

struct VarDecl {
  uint32_t line = 0;
  VarSpace space = VarSpace::Reg;
  uint32_t align = 0;         // 0: natural
  Ty type = Ty::None;
  uint32_t vec = 1;           // .v2/.v4
  std::string name;
  int32_t range = -1;         // %r<68>: 68 names %r0..%r67
  std::vector<uint64_t> dims; // array dimensions; 0 means "[]"
  bool has_init = false;
  std::vector<InitItem> init;
  bool is_extern = false, is_visible = false, is_weak = false, is_common = false;
  bool ptr_attr = false;      // .ptr on kernel params (ignored)
  uint64_t elem_count() const {
    uint64_t n = 1;
    for (uint64_t d : dims) n *= d;
    return n;
  }
};

struct Stmt {
  enum Kind : uint8_t { Inst, Label, Decl, Open, Close, BranchTargets, CallProto };
  Kind kind = Inst;
  uint32_t line = 0;
  Instr inst;                 // Inst
  std::string label;          // Label / BranchTargets / CallProto name
  VarDecl decl;               // Decl
  std::vector<std::string> targets;  // BranchTargets
};

struct Func {
  uint32_t line = 0;
  bool is_entry = false;
  bool is_extern = false, is_visible = false, is_weak = false;
  bool has_body = false;
  bool noreturn = false;
  std::string name;
  std::vector<VarDecl> rets;
  std::vector<VarDecl> params;
  uint32_t maxntid[3] = {0, 0, 0};
  uint32_t reqntid[3] = {0, 0, 0};
  uint32_t minnctapersm = 0;
  uint32_t maxnreg = 0;
  std::vector<Stmt> body;
};

struct Module {
  uint32_t version_major = 0, version_minor = 0;
  std::string target;
  uint32_t address_size = 64;
  std::vector<VarDecl> vars;  // module-scope variables
  std::vector<Func> funcs;    // declarations and definitions, in order
};

}  // namespace simgpu::ptx::ast

namespace simgpu::ptx {
// Parses PTX text; on failure returns false with `error` naming the line.
bool parse_module(std::string_view src, ast::Module& out, std::string& error);
}  // namespace simgpu::ptx
