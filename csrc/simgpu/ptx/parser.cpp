// Recursive-descent parser from tokens to ast::Module.  Only syntax is checked
// here; names, types and operand shapes are validated by the compiler.
#include <cstring>
#include <stdexcept>

#include "ptx/ast.h"
#include "ptx/lexer.h"

namespace simgpu::ptx {

namespace {

using namespace ast;

struct ParseError {
  uint32_t line;
  std::string msg;
};

class Parser {
 public:
  Parser(std::string_view src, const std::vector<Token>& toks) : src_(src), t_(toks) {}

  void module(Module& m) {
    while (!at_end()) {
      const Token& k = peek();
      if (k.kind == Tok::Dot) {
        std::string_view d = k.text;
        if (d == ".version") {
          next();
          const Token& v = next();
          if (v.kind != Tok::Float && v.kind != Tok::Int) fail(v, "expected version number");
          std::string s(v.text);
          auto dot = s.find('.');
          m.version_major = uint32_t(std::strtoul(s.c_str(), nullptr, 10));
          m.version_minor = dot == std::string::npos ? 0 : uint32_t(std::strtoul(s.c_str() + dot + 1, nullptr, 10));
          continue;
        }
        if (d == ".target") {
          next();
          m.target = std::string(expect_ident("target name").text);
          while (accept(',')) expect_ident("target option");
          continue;
        }
        if (d == ".address_size") {
          next();
          const Token& v = next();
          if (v.kind != Tok::Int) fail(v, "expected address size");
          m.address_size = uint32_t(v.ival);
          continue;
        }
        if (d == ".file") {
          next();
          expect_int("file number");
          if (peek().kind == Tok::String) next();
          while (accept(',')) next();
          continue;
        }
        if (d == ".section") {
          skip_section();
          continue;
        }
        if (d == ".pragma") {
          next();
          while (!at_end() && !is_punct(peek(), ';')) next();
          expect(';');
          continue;
        }
        if (d == ".extern" || d == ".visible" || d == ".weak" || d == ".common" || d == ".entry" ||
            d == ".func" || d == ".global" || d == ".const" || d == ".shared" || d == ".local" ||
            d == ".alias") {
          toplevel(m);
          continue;
        }
        fail(k, "unknown directive '" + std::string(d) + "'");
      }
      fail(k, "expected a directive, found '" + std::string(k.text) + "'");
    }
  }

 private:
  std::string_view src_;
  const std::vector<Token>& t_;
  size_t i_ = 0;

  [[noreturn]] void fail(const Token& t, const std::string& msg) { throw ParseError{t.line, msg}; }
  const Token& peek(size_t k = 0) const {
    size_t j = i_ + k;
    return j < t_.size() ? t_[j] : t_.back();
  }
  const Token& next() {
    const Token& t = peek();
    if (i_ < t_.size() - 1) ++i_;
    return t;
  }
  bool at_end() const { return peek().kind == Tok::End; }
  static bool is_punct(const Token& t, char c) { return t.kind == Tok::Punct && t.punct == c; }
  bool accept(char c) {
    if (is_punct(peek(), c)) { next(); return true; }
    return false;
  }
  void expect(char c) {
    const Token& t = peek();
    if (!is_punct(t, c)) fail(t, std::string("expected '") + c + "', found '" + tok_str(t) + "'");
    next();
  }
  static std::string tok_str(const Token& t) {
    if (t.kind == Tok::End) return "end of input";
    return std::string(t.text);
  }
  const Token& expect_ident(const char* what) {
    const Token& t = peek();
    if (t.kind != Tok::Ident) fail(t, std::string("expected ") + what + ", found '" + tok_str(t) + "'");
    return next();
  }
  uint64_t expect_int(const char* what) {
    const Token& t = peek();
    if (t.kind != Tok::Int) fail(t, std::string("expected ") + what + ", found '" + tok_str(t) + "'");
    next();
    return t.ival;
  }
  bool accept_dot(std::string_view d) {
    if (peek().kind == Tok::Dot && peek().text == d) { next(); return true; }
    return false;
  }

  void skip_section() {
    next();  // .section
    while (!at_end() && !is_punct(peek(), '{')) next();
    expect('{');
    int depth = 1;
    while (depth > 0) {
      if (at_end()) fail(peek(), "unterminated .section");
      const Token& t = next();
      if (is_punct(t, '{')) ++depth;
      if (is_punct(t, '}')) --depth;
    }
  }

  void toplevel(Module& m) {
    bool ext = false, vis = false, weak = false, common = false;
    for (;;) {
      if (accept_dot(".extern")) { ext = true; continue; }
      if (accept_dot(".visible")) { vis = true; continue; }
      if (accept_dot(".weak")) { weak = true; continue; }
      if (accept_dot(".common")) { common = true; continue; }
      break;
    }
    const Token& k = peek();
    if (k.kind == Tok::Dot && (k.text == ".entry" || k.text == ".func")) {
      Func f;
      f.is_extern = ext;
      f.is_visible = vis;
      f.is_weak = weak;
      function(f);
      m.funcs.push_back(std::move(f));
      return;
    }
    if (k.kind == Tok::Dot && k.text == ".alias") fail(k, "unsupported directive '.alias'");
    VarSpace sp;
    if (!space_of(k, sp) || sp == VarSpace::Reg || sp == VarSpace::Param)
      fail(k, "expected a variable or function declaration, found '" + tok_str(k) + "'");
    std::vector<VarDecl> ds;
    var_decl(ds, /*allow_init=*/true, /*multi=*/true);
    for (VarDecl& d : ds) {
      d.is_extern = ext;
      d.is_visible = vis;
      d.is_weak = weak;
      d.is_common = common;
      m.vars.push_back(std::move(d));
    }
    expect(';');
  }

  static bool space_of(const Token& t, VarSpace& sp) {
    if (t.kind != Tok::Dot) return false;
    std::string_view s = t.text;
    if (s == ".reg") sp = VarSpace::Reg;
    else if (s == ".global") sp = VarSpace::Global;
    else if (s == ".const") sp = VarSpace::Const;
    else if (s == ".shared" || s == ".shared::cta") sp = VarSpace::Shared;
    else if (s == ".local") sp = VarSpace::Local;
    else if (s == ".param") sp = VarSpace::Param;
    else return false;
    return true;
  }

  // Parses `.space attrs... .type name[dims] [= init] {, name...}`.  The
  // current token is the space directive.
  void var_decl(std::vector<VarDecl>& out, bool allow_init, bool multi) {
    VarDecl d;
    d.line = peek().line;
    if (!space_of(peek(), d.space)) fail(peek(), "expected a state space");
    next();
    for (;;) {
      const Token& t = peek();
      if (t.kind != Tok::Dot) break;
      std::string_view s = t.text;
      if (s == ".align") {
        next();
        uint64_t a = expect_int("alignment");
        if (a == 0 || (a & (a - 1)) || a > 4096) fail(t, "invalid alignment");
        d.align = uint32_t(a);
        continue;
      }
      if (s == ".v2" || s == ".v4" || s == ".v8") {
        next();
        d.vec = uint32_t(s[2] - '0');
        continue;
      }
      if (s == ".ptr") { next(); d.ptr_attr = true; continue; }
      if (s == ".attribute") {
        next();
        expect('(');
        int depth = 1;
        while (depth > 0) {
          if (at_end()) fail(t, "unterminated .attribute");
          const Token& x = next();
          if (is_punct(x, '(')) ++depth;
          if (is_punct(x, ')')) --depth;
        }
        continue;
      }
      // state-space qualifiers of .ptr params: .global/.shared/.const/.local
      if (d.ptr_attr && (s == ".global" || s == ".shared" || s == ".const" || s == ".local")) {
        next();
        continue;
      }
      Ty ty = ty_parse(s);
      if (ty != Ty::None) {
        if (d.type != Ty::None) fail(t, "two types in declaration");
        d.type = ty;
        next();
        continue;
      }
      fail(t, "unknown attribute '" + std::string(s) + "' in declaration");
    }
    if (d.type == Ty::None) fail(peek(), "declaration without a type");
    for (;;) {
      VarDecl v = d;
      const Token& nt = peek();
      if (nt.kind != Tok::Ident) fail(nt, "expected a name in declaration, found '" + tok_str(nt) + "'");
      v.name = std::string(nt.text);
      v.line = nt.line;
      next();
      if (accept('<')) {
        uint64_t r = expect_int("register count");
        if (r > (1u << 20)) fail(nt, "register range too large");
        v.range = int32_t(r);
        expect('>');
      }
      while (accept('[')) {
        if (accept(']')) { v.dims.push_back(0); continue; }
        uint64_t n = expect_int("array size");
        if (n == 0 || n > (uint64_t(1) << 40)) fail(nt, "invalid array size");
        v.dims.push_back(n);
        expect(']');
      }
      if (accept('=')) {
        if (!allow_init) fail(nt, "initializer not allowed here");
        v.has_init = true;
        initializer(v.init);
      }
      out.push_back(std::move(v));
      if (!multi || !is_punct(peek(), ',')) break;
      next();
    }
  }

  void init_value(std::vector<InitItem>& out) {
    InitItem it;
    const Token& t = peek();
    bool neg = false;
    if (is_punct(t, '-')) { neg = true; next(); }
    const Token& v = peek();
    if (v.kind == Tok::Int) {
      next();
      it.kind = InitItem::Int;
      it.ival = neg ? uint64_t(0) - v.ival : v.ival;
    } else if (v.kind == Tok::Float) {
      next();
      it.kind = InitItem::Float;
      it.fval = neg ? -v.fval : v.fval;
      it.f32_hex = v.is_f32_hex;
      it.f64_hex = v.is_f64_hex;
      if (neg && (v.is_f32_hex || v.is_f64_hex)) fail(v, "negated hexadecimal float literal");
    } else if (v.kind == Tok::Ident && !neg) {
      next();
      it.kind = InitItem::Addr;
      if (v.text == "generic" && is_punct(peek(), '(')) {
        next();
        it.generic = true;
        it.sym = std::string(expect_ident("symbol").text);
        expect(')');
      } else {
        it.sym = std::string(v.text);
      }
      while (is_punct(peek(), '+') || is_punct(peek(), '-')) {
        bool minus = is_punct(next(), '-');
        uint64_t o = expect_int("offset");
        it.offset = int64_t(uint64_t(it.offset) + (minus ? uint64_t(0) - o : o));
      }
    } else {
      fail(v, "expected an initializer value, found '" + tok_str(v) + "'");
    }
    out.push_back(it);
  }

  void initializer(std::vector<InitItem>& out, int depth = 0) {
    if (depth > 32) fail(peek(), "initializer nested too deeply");
    if (accept('{')) {
      if (accept('}')) return;
      for (;;) {
        if (is_punct(peek(), '{')) initializer(out, depth + 1);
        else init_value(out);
        if (accept('}')) return;
        expect(',');
      }
    }
    init_value(out);
  }

  void param_list(std::vector<VarDecl>& out) {
    expect('(');
    if (accept(')')) return;
    for (;;) {
      VarSpace sp;
      if (!space_of(peek(), sp) || (sp != VarSpace::Param && sp != VarSpace::Reg))
        fail(peek(), "expected .param or .reg in parameter list");
      std::vector<VarDecl> one;
      var_decl(one, false, false);
      out.push_back(std::move(one[0]));
      if (accept(')')) return;
      expect(',');
    }
  }

  void function(Func& f) {
    const Token& k = next();
    f.line = k.line;
    f.is_entry = k.text == ".entry";
    if (!f.is_entry && is_punct(peek(), '(')) param_list(f.rets);
    f.name = std::string(expect_ident("function name").text);
    if (is_punct(peek(), '(')) param_list(f.params);
    // Performance-tuning directives and attributes.
    for (;;) {
      const Token& t = peek();
      if (t.kind != Tok::Dot) break;
      std::string_view s = t.text;
      if (s == ".maxntid" || s == ".reqntid") {
        next();
        uint32_t* dst = s == ".maxntid" ? f.maxntid : f.reqntid;
        dst[0] = uint32_t(expect_int("thread count"));
        dst[1] = dst[2] = 1;
        if (accept(',')) dst[1] = uint32_t(expect_int("thread count"));
        if (accept(',')) dst[2] = uint32_t(expect_int("thread count"));
        continue;
      }
      if (s == ".minnctapersm") { next(); f.minnctapersm = uint32_t(expect_int("count")); continue; }
      if (s == ".maxnctapersm") { next(); expect_int("count"); continue; }
      if (s == ".maxnreg") { next(); f.maxnreg = uint32_t(expect_int("count")); continue; }
      if (s == ".noreturn") { next(); f.noreturn = true; continue; }
      if (s == ".maxclusterrank") { next(); expect_int("count"); continue; }
      if (s == ".reqnctapercluster") {
        next();
        uint64_t a = expect_int("count"), b = 1, c = 1;
        if (accept(',')) b = expect_int("count");
        if (accept(',')) c = expect_int("count");
        if (a * b * c != 1) fail(t, "unsupported: clusters of more than one CTA");
        continue;
      }
      if (s == ".explicitcluster") { next(); continue; }
      if (s == ".pragma") {
        next();
        while (!at_end() && !is_punct(peek(), ';')) next();
        expect(';');
        continue;
      }
      if (s == ".abi_preserve" || s == ".abi_preserve_control") { next(); expect_int("count"); continue; }
      fail(t, "unknown function directive '" + std::string(s) + "'");
    }
    if (accept(';')) return;
    if (!is_punct(peek(), '{')) fail(peek(), "expected '{' or ';' after function header");
    next();
    f.has_body = true;
    int depth = 1;
    while (depth > 0) {
      if (at_end()) fail(peek(), "unexpected end of input in body of '" + f.name + "'");
      const Token& t = peek();
      if (is_punct(t, '{')) {
        next();
        ++depth;
        Stmt s;
        s.kind = Stmt::Open;
        s.line = t.line;
        f.body.push_back(std::move(s));
        continue;
      }
      if (is_punct(t, '}')) {
        next();
        if (--depth == 0) break;
        Stmt s;
        s.kind = Stmt::Close;
        s.line = t.line;
        f.body.push_back(std::move(s));
        continue;
      }
      statement(f);
    }
  }

  void statement(Func& f) {
    const Token& t = peek();
    if (t.kind == Tok::Dot) {
      std::string_view s = t.text;
      if (s == ".loc") {
        // `.loc file line col [, function_name ... inlined_at ...]` ends at the line end.
        uint32_t line = t.line;
        while (!at_end() && peek().line == line) next();
        return;
      }
      if (s == ".pragma") {
        next();
        while (!at_end() && !is_punct(peek(), ';')) next();
        expect(';');
        return;
      }
      VarSpace sp;
      if (space_of(t, sp)) {
        std::vector<VarDecl> ds;
        var_decl(ds, sp != VarSpace::Reg, true);
        expect(';');
        for (VarDecl& d : ds) {
          Stmt st;
          st.kind = Stmt::Decl;
          st.line = d.line;
          st.decl = std::move(d);
          f.body.push_back(std::move(st));
        }
        return;
      }
      fail(t, "unknown directive '" + std::string(s) + "' in function body");
    }
    if (t.kind == Tok::Ident && is_punct(peek(1), ':')) {
      Stmt st;
      st.line = t.line;
      st.label = std::string(t.text);
      next();
      next();
      const Token& d = peek();
      if (d.kind == Tok::Dot && d.text == ".branchtargets") {
        next();
        st.kind = Stmt::BranchTargets;
        for (;;) {
          st.targets.push_back(std::string(expect_ident("label").text));
          if (!accept(',')) break;
        }
        expect(';');
      } else if (d.kind == Tok::Dot && d.text == ".callprototype") {
        st.kind = Stmt::CallProto;
        while (!at_end() && !is_punct(peek(), ';')) next();
        expect(';');
      } else {
        st.kind = Stmt::Label;
      }
      f.body.push_back(std::move(st));
      return;
    }
    Stmt st;
    st.kind = Stmt::Inst;
    st.line = t.line;
    instruction(st.inst);
    f.body.push_back(std::move(st));
  }

  void instruction(Instr& in) {
    const Token& first = peek();
    in.line = first.line;
    const char* begin = first.text.data();
    if (accept('@')) {
      in.guard_neg = accept('!');
      in.guard = std::string(expect_ident("guard predicate").text);
    }
    const Token& op = peek();
    if (op.kind != Tok::Ident) fail(op, "expected an instruction, found '" + tok_str(op) + "'");
    in.op = std::string(op.text);
    next();
    while (peek().kind == Tok::Dot) in.mods.push_back(std::string(next().text));
    if (!is_punct(peek(), ';')) {
      for (;;) {
        in.ops.push_back(operand());
        if (accept(',')) continue;
        // call's argument list follows its target without a comma in some
        // writers; nvcc always uses commas, so anything else is an error.
        break;
      }
    }
    const Token& semi = peek();
    if (!is_punct(semi, ';'))
      fail(semi, "expected ';' after instruction '" + in.op + "', found '" + tok_str(semi) + "'");
    const char* end = semi.text.data();
    next();
    if (begin >= src_.data() && end >= begin && end <= src_.data() + src_.size()) {
      std::string txt(begin, size_t(end - begin));
      // Collapse whitespace runs so diagnostics are one line.
      std::string out;
      bool sp = false;
      for (char c : txt) {
        bool w = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if (w) { sp = true; continue; }
        if (sp && !out.empty()) out += ' ';
        sp = false;
        out += c;
      }
      in.text = out;
    } else {
      in.text = in.op;
    }
  }

  int64_t offset_expr() {
    int64_t off = 0;
    while (is_punct(peek(), '+') || is_punct(peek(), '-')) {
      bool minus = is_punct(next(), '-');
      if (accept('-')) minus = !minus;
      uint64_t v = expect_int("offset");
      off = int64_t(uint64_t(off) + (minus ? uint64_t(0) - v : v));  // wraps like the address arithmetic
    }
    return off;
  }

  Operand operand(int depth = 0) {
    Operand o;
    const Token& t = peek();
    if (depth > 4) fail(t, "operand nested too deeply");
    if (is_punct(t, '[')) {
      next();
      o.kind = Operand::Mem;
      if (peek().kind == Tok::Ident) {
        o.name = std::string(next().text);
        o.ival = offset_expr();
        // Texture/surface addressing: [tex, {coords}] or [tex, sampler, {coords}].
        while (accept(',')) o.elems.push_back(operand(depth + 1));
      } else {
        bool minus = accept('-');
        uint64_t v = expect_int("address");
        o.ival = int64_t(minus ? uint64_t(0) - v : v);
        o.ival = int64_t(uint64_t(o.ival) + uint64_t(offset_expr()));
      }
      expect(']');
      return o;
    }
    if (is_punct(t, '{')) {
      next();
      o.kind = Operand::Vec;
      for (;;) {
        o.elems.push_back(operand(depth + 1));
        if (accept('}')) break;
        expect(',');
      }
      return o;
    }
    if (is_punct(t, '(')) {
      next();
      o.kind = Operand::List;
      if (accept(')')) return o;
      for (;;) {
        o.elems.push_back(operand(depth + 1));
        if (accept(')')) break;
        expect(',');
      }
      return o;
    }
    if (is_punct(t, '!')) {
      next();
      o = operand(depth + 1);
      if (o.kind != Operand::Name) fail(t, "'!' applies only to predicates");
      o.neg = !o.neg;
      return o;
    }
    bool neg = false;
    if (is_punct(t, '-')) { next(); neg = true; }
    const Token& v = peek();
    if (v.kind == Tok::Int) {
      next();
      o.kind = Operand::Int;
      o.ival = int64_t(neg ? uint64_t(0) - v.ival : v.ival);
      return o;
    }
    if (v.kind == Tok::Float) {
      next();
      o.kind = Operand::Float;
      o.fval = neg ? -v.fval : v.fval;
      o.f32_hex = v.is_f32_hex;
      o.f64_hex = v.is_f64_hex;
      return o;
    }
    if (v.kind == Tok::Ident && v.text == "WARP_SZ") {
      // The one predefined constant of PTX.
      next();
      o.kind = Operand::Int;
      o.ival = neg ? -32 : 32;
      return o;
    }
    if (v.kind == Tok::Ident && !neg) {
      next();
      if (v.text == "_") {
        o.kind = Operand::Sink;
      } else {
        o.kind = Operand::Name;
        o.name = std::string(v.text);
        // %tid.x and friends
        const Token& d = peek();
        if (o.name[0] == '%' && d.kind == Tok::Dot &&
            (d.text == ".x" || d.text == ".y" || d.text == ".z" || d.text == ".w")) {
          o.name += std::string(d.text);
          next();
        }
        if (is_punct(peek(), '+') || is_punct(peek(), '-')) {
          // `sym+8` in mov; never mistaken for the next operand (a comma separates them)
          o.ival = offset_expr();
        }
      }
      if (accept('|')) {
        const Token& p = peek();
        if (p.kind != Tok::Ident) fail(p, "expected a predicate after '|'");
        o.name2 = std::string(next().text);
      }
      return o;
    }
    fail(v, "expected an operand, found '" + tok_str(v) + "'");
  }
};

}  // namespace

bool parse_module(std::string_view src, ast::Module& out, std::string& error) {
  std::vector<Token> toks;
  if (!tokenize(src, toks, error)) return false;
  Parser p(src, toks);
  try {
    p.module(out);
  } catch (const ParseError& e) {
    error = "line " + std::to_string(e.line) + ": " + e.msg;
    return false;
  }
  return true;
}

}  // namespace simgpu::ptx
