// PTX scalar types and the modifiers shared by parser, compiler and handlers.
#pragma once

#include <cstdint>
#include <string_view>

namespace simgpu::ptx {

enum class Ty : uint8_t {
  None,
  B8, B16, B32, B64, B128,
  U8, U16, U32, U64,
  S8, S16, S32, S64,
  F16, F16x2, BF16, BF16x2, F32, F64, TF32,
  E4M3x2, E5M2x2,
  Pred,
};

enum class TyKind : uint8_t { None, Bits, Unsigned, Signed, Float, Pred };

constexpr unsigned ty_size(Ty t) {
  switch (t) {
    case Ty::B8: case Ty::U8: case Ty::S8: return 1;
    case Ty::B16: case Ty::U16: case Ty::S16: case Ty::F16: case Ty::BF16:
    case Ty::E4M3x2: case Ty::E5M2x2: return 2;
    case Ty::B32: case Ty::U32: case Ty::S32: case Ty::F32: case Ty::F16x2:
    case Ty::BF16x2: case Ty::TF32: return 4;
    case Ty::B64: case Ty::U64: case Ty::S64: case Ty::F64: return 8;
    case Ty::B128: return 16;
    case Ty::Pred: return 0;
    case Ty::None: return 0;
  }
  return 0;
}

constexpr TyKind ty_kind(Ty t) {
  switch (t) {
    case Ty::B8: case Ty::B16: case Ty::B32: case Ty::B64: case Ty::B128: return TyKind::Bits;
    case Ty::U8: case Ty::U16: case Ty::U32: case Ty::U64: return TyKind::Unsigned;
    case Ty::S8: case Ty::S16: case Ty::S32: case Ty::S64: return TyKind::Signed;
    case Ty::F16: case Ty::F16x2: case Ty::BF16: case Ty::BF16x2: case Ty::F32: case Ty::F64:
    case Ty::TF32: case Ty::E4M3x2: case Ty::E5M2x2: return TyKind::Float;
    case Ty::Pred: return TyKind::Pred;
    case Ty::None: return TyKind::None;
  }
  return TyKind::None;
}

constexpr bool ty_is_int(Ty t) {
  TyKind k = ty_kind(t);
  return k == TyKind::Unsigned || k == TyKind::Signed || k == TyKind::Bits;
}
constexpr bool ty_is_signed(Ty t) { return ty_kind(t) == TyKind::Signed; }
constexpr bool ty_is_float(Ty t) { return ty_kind(t) == TyKind::Float; }

// The unsigned type of the same width: what the register file stores.
constexpr Ty ty_bits(unsigned size) {
  switch (size) {
    case 1: return Ty::B8;
    case 2: return Ty::B16;
    case 4: return Ty::B32;
    case 8: return Ty::B64;
    case 16: return Ty::B128;
  }
  return Ty::None;
}

Ty ty_parse(std::string_view s);      // ".u32" -> U32, None when not a type
const char* ty_name(Ty t);            // "u32"

// IEEE rounding modes; the *I variants round a float to an integral value.
enum class Rnd : uint8_t { None, RN, RZ, RM, RP, RNA, RNI, RZI, RMI, RPI };

// State spaces an instruction may name.
enum class Sp : uint8_t { Generic, Global, Shared, Local, Param, Const, Reg };

enum class Cmp : uint8_t {
  EQ, NE, LT, LE, GT, GE, LO, LS, HI, HS, EQU, NEU, LTU, LEU, GTU, GEU, NUM, NAN_,
};

enum class BoolOp : uint8_t { None, And, Or, Xor };

}  // namespace simgpu::ptx
