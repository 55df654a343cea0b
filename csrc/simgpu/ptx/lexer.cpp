#include "ptx/lexer.h"

#include <cstdlib>
#include <cstring>

#include "ptx/types.h"

namespace simgpu::ptx {

namespace {

bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' || c == '%';
}
bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$';
}
bool digit(char c) { return c >= '0' && c <= '9'; }
bool hexdigit(char c) {
  return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hexval(char c) {
  if (digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

}  // namespace

Ty ty_parse(std::string_view s) {
  if (!s.empty() && s[0] == '.') s.remove_prefix(1);
  struct E { const char* n; Ty t; };
  static const E table[] = {
      {"b8", Ty::B8},       {"b16", Ty::B16},       {"b32", Ty::B32},     {"b64", Ty::B64},
      {"b128", Ty::B128},   {"u8", Ty::U8},         {"u16", Ty::U16},     {"u32", Ty::U32},
      {"u64", Ty::U64},     {"s8", Ty::S8},         {"s16", Ty::S16},     {"s32", Ty::S32},
      {"s64", Ty::S64},     {"f16", Ty::F16},       {"f16x2", Ty::F16x2}, {"bf16", Ty::BF16},
      {"bf16x2", Ty::BF16x2}, {"f32", Ty::F32},     {"f64", Ty::F64},     {"tf32", Ty::TF32},
      {"e4m3x2", Ty::E4M3x2}, {"e5m2x2", Ty::E5M2x2}, {"pred", Ty::Pred},
  };
  for (const E& e : table)
    if (s == e.n) return e.t;
  return Ty::None;
}

const char* ty_name(Ty t) {
  switch (t) {
    case Ty::None: return "none";
    case Ty::B8: return "b8";
    case Ty::B16: return "b16";
    case Ty::B32: return "b32";
    case Ty::B64: return "b64";
    case Ty::B128: return "b128";
    case Ty::U8: return "u8";
    case Ty::U16: return "u16";
    case Ty::U32: return "u32";
    case Ty::U64: return "u64";
    case Ty::S8: return "s8";
    case Ty::S16: return "s16";
    case Ty::S32: return "s32";
    case Ty::S64: return "s64";
    case Ty::F16: return "f16";
    case Ty::F16x2: return "f16x2";
    case Ty::BF16: return "bf16";
    case Ty::BF16x2: return "bf16x2";
    case Ty::F32: return "f32";
    case Ty::F64: return "f64";
    case Ty::TF32: return "tf32";
    case Ty::E4M3x2: return "e4m3x2";
    case Ty::E5M2x2: return "e5m2x2";
    case Ty::Pred: return "pred";
  }
  return "?";
}

bool tokenize(std::string_view src, std::vector<Token>& out, std::string& error) {
  uint32_t line = 1;
  size_t i = 0, n = src.size();
  auto fail = [&](const char* what) {
    error = "line " + std::to_string(line) + ": " + what;
    return false;
  };
  while (i < n) {
    char c = src[i];
    if (c == '\n') { ++line; ++i; continue; }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') { ++i; continue; }
    if (c == '/' && i + 1 < n && src[i + 1] == '/') {
      while (i < n && src[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && src[i + 1] == '*') {
      i += 2;
      bool closed = false;
      while (i + 1 < n) {
        if (src[i] == '\n') ++line;
        if (src[i] == '*' && src[i + 1] == '/') { i += 2; closed = true; break; }
        ++i;
      }
      if (!closed) return fail("unterminated comment");
      continue;
    }
    Token t;
    t.line = line;
    size_t start = i;
    if (ident_start(c)) {
      ++i;
      while (i < n && ident_char(src[i])) ++i;
      t.kind = Tok::Ident;
      t.text = src.substr(start, i - start);
      if (t.text == "%" || t.text == "$") return fail("stray character in identifier");
      out.push_back(t);
      continue;
    }
    if (c == '.' && i + 1 < n && (ident_char(src[i + 1]))) {
      ++i;
      // Modifiers such as .shared::cta or .L2::cache_hint keep their "::" parts.
      while (i < n) {
        if (ident_char(src[i])) { ++i; continue; }
        if (src[i] == ':' && i + 2 < n && src[i + 1] == ':' && ident_char(src[i + 2])) {
          i += 2;
          continue;
        }
        break;
      }
      t.kind = Tok::Dot;
      t.text = src.substr(start, i - start);
      out.push_back(t);
      continue;
    }
    if (digit(c)) {
      if (c == '0' && i + 1 < n && (src[i + 1] == 'f' || src[i + 1] == 'F' || src[i + 1] == 'd' ||
                                    src[i + 1] == 'D')) {
        bool f32 = src[i + 1] == 'f' || src[i + 1] == 'F';
        size_t want = f32 ? 8 : 16;
        size_t j = i + 2;
        uint64_t bits = 0;
        while (j < n && hexdigit(src[j]) && j - (i + 2) < want) bits = bits << 4 | hexval(src[j++]);
        if (j - (i + 2) != want || (j < n && ident_char(src[j])))
          return fail("malformed hexadecimal floating-point literal");
        t.kind = Tok::Float;
        if (f32) {
          uint32_t b32 = uint32_t(bits);
          float f;
          std::memcpy(&f, &b32, 4);
          t.fval = f;
          t.is_f32_hex = true;
        } else {
          std::memcpy(&t.fval, &bits, 8);
          t.is_f64_hex = true;
        }
        t.ival = bits;
        i = j;
        t.text = src.substr(start, i - start);
        out.push_back(t);
        continue;
      }
      // Decimal float?
      size_t j = i;
      while (j < n && digit(src[j])) ++j;
      if (j < n && (src[j] == '.' || src[j] == 'e' || src[j] == 'E') &&
          !(src[j] == '.' && j + 1 < n && !digit(src[j + 1]) && src[j + 1] != 'e' &&
            src[j + 1] != 'E')) {
        std::string tmp(src.substr(i, std::min<size_t>(64, n - i)));
        char* endp = nullptr;
        double v = std::strtod(tmp.c_str(), &endp);
        size_t used = size_t(endp - tmp.c_str());
        if (used == 0) return fail("malformed number");
        t.kind = Tok::Float;
        t.fval = v;
        i += used;
        t.text = src.substr(start, i - start);
        out.push_back(t);
        continue;
      }
      uint64_t v = 0;
      bool overflow = false;
      auto acc = [&](unsigned base, unsigned d) {
        if (v > (UINT64_MAX - d) / base) overflow = true;
        v = v * base + d;
      };
      if (c == '0' && i + 1 < n && (src[i + 1] == 'x' || src[i + 1] == 'X')) {
        i += 2;
        if (i >= n || !hexdigit(src[i])) return fail("malformed hexadecimal literal");
        while (i < n && hexdigit(src[i])) acc(16, hexval(src[i++]));
      } else if (c == '0' && i + 1 < n && (src[i + 1] == 'b' || src[i + 1] == 'B')) {
        i += 2;
        if (i >= n || (src[i] != '0' && src[i] != '1')) return fail("malformed binary literal");
        while (i < n && (src[i] == '0' || src[i] == '1')) acc(2, src[i++] - '0');
      } else if (c == '0' && i + 1 < n && digit(src[i + 1])) {
        ++i;
        while (i < n && src[i] >= '0' && src[i] <= '7') acc(8, src[i++] - '0');
      } else {
        while (i < n && digit(src[i])) acc(10, src[i++] - '0');
      }
      if (overflow) return fail("integer literal out of range");
      if (i < n && (src[i] == 'U' || src[i] == 'u')) ++i;
      if (i < n && ident_char(src[i])) return fail("malformed number");
      t.kind = Tok::Int;
      t.ival = v;
      t.text = src.substr(start, i - start);
      out.push_back(t);
      continue;
    }
    if (c == '"') {
      ++i;
      while (i < n && src[i] != '"' && src[i] != '\n') {
        if (src[i] == '\\' && i + 1 < n) ++i;
        ++i;
      }
      if (i >= n || src[i] != '"') return fail("unterminated string");
      t.kind = Tok::String;
      t.text = src.substr(start + 1, i - start - 1);
      ++i;
      out.push_back(t);
      continue;
    }
    if (std::strchr(";,{}[]()+-!@|<>=:*~&", c) && c != 0) {
      t.kind = Tok::Punct;
      t.punct = c;
      t.text = src.substr(i, 1);
      ++i;
      out.push_back(t);
      continue;
    }
    if (c == 0) return fail("NUL byte in PTX text");
    return fail("unexpected character");
  }
  Token end;
  end.kind = Tok::End;
  end.line = line;
  out.push_back(end);
  return true;
}

}  // namespace simgpu::ptx
