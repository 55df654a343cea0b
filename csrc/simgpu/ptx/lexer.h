// Tokenizer for PTX text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace simgpu::ptx {

enum class Tok : uint8_t {
  End,
  Ident,      // foo, %r1, $L__BB0_2, _Z3fibi
  Dot,        // .reg, .u32, .shared::cta, .L2::cache_hint (text includes the dot)
  Int,        // 12, 0x1F, 0b101, 017 (value in ival; `unsigned_suffix` for 'U')
  Float,      // 0f3F800000 (f32 bits), 0d... (f64 bits), 1.5 (decimal)
  String,     // "a.cu" (text without quotes)
  Punct,      // one of ; , { } [ ] ( ) + - ! @ | < > = : * ~ &
};

struct Token {
  Tok kind = Tok::End;
  char punct = 0;
  bool is_f32_hex = false;   // 0f literal: fval holds the float value exactly
  bool is_f64_hex = false;
  uint32_t line = 0;
  uint64_t ival = 0;
  double fval = 0;
  std::string_view text;     // view into the source
};

// Splits `src` into tokens; comments are dropped.  On a lexical error returns
// false with `error` naming the line.
bool tokenize(std::string_view src, std::vector<Token>& out, std::string& error);

}  // namespace simgpu::ptx
