// Program::load: kernel metadata, module variables, and refusal of malformed
// or unsupported PTX with a message naming the line (never a crash or hang).
#include <random>
#include <string>

#include "harness.h"

namespace simgpu::ptx::test {
namespace {

const char* kHeader = ".version 8.0\n.target sm_90\n.address_size 64\n";

std::string load_error(const std::string& body) {
  std::string err;
  auto p = Program::load(std::string(kHeader) + body, err);
  return p ? std::string("<loaded>") : err;
}

TEST(Load, KernelMetadata) {
  const char* src = R"(
.global .align 4 .b8 table[12] = {1, 0, 0, 0, 2, 0, 0, 0, 3};
.global .align 8 .u64 ptr = generic(table)+4;
.const .align 4 .f32 coef[3] = {0f3F800000, 0f40000000, 0f40400000};
.global .align 8 .u64 fptr = helper;
.shared .align 16 .b8 mod_sh[100];
.extern .shared .align 16 .b8 dyn[];

.func (.param .b32 r) helper(.param .b32 a)
{
  .local .align 8 .b8 depot[40];
  .reg .b32 %r<3>;
  ld.param.u32 %r1, [a];
  st.param.b32 [r], %r1;
  ret;
}

.visible .entry k1(
  .param .u64 p0,
  .param .align 8 .b8 p1[24],
  .param .u32 p2,
  .param .align 16 .b8 p3[32]
)
.maxntid 128, 2, 1
.minnctapersm 3
{
  .local .align 4 .b8 kd[16];
  .shared .align 4 .b8 ksh[60];
  .reg .b32 %r<5>;
  .reg .b64 %rd<4>;
  .reg .pred %p<2>;
  ret;
}

.entry k2() .reqntid 64, 1, 1
{
  mov.u32 %envreg9, 1;
  ret;
}
)";
  std::string err;
  auto bad = Program::load(std::string(kHeader) + src, err);
  EXPECT_FALSE(bad);
  EXPECT_NE(err.find("%envreg9"), std::string::npos) << err;  // special registers are read-only

  std::string ok = src;
  ok.replace(ok.find("mov.u32 %envreg9, 1;"), 20, "");
  auto p = Program::load(std::string(kHeader) + ok, err);
  ASSERT_TRUE(p) << err;
  ASSERT_EQ(p->kernels().size(), 2u);
  const KernelInfo& k = p->kernels()[size_t(p->find_kernel("k1"))];
  ASSERT_EQ(k.params.size(), 4u);
  EXPECT_EQ(k.params[0].offset, 0u);
  EXPECT_EQ(k.params[0].size, 8u);
  EXPECT_EQ(k.params[1].offset, 8u);
  EXPECT_EQ(k.params[1].size, 24u);
  EXPECT_EQ(k.params[1].align, 8u);
  EXPECT_EQ(k.params[2].offset, 32u);
  EXPECT_EQ(k.params[3].offset, 48u);
  EXPECT_EQ(k.params[3].align, 16u);
  EXPECT_EQ(k.param_bytes, 80u);
  EXPECT_EQ(k.static_shared_bytes, 160u);  // 100 module-scope (aligned) + 60
  EXPECT_EQ(k.local_bytes, 16u);
  EXPECT_EQ(k.max_threads_per_block, 256u);
  EXPECT_EQ(k.min_ctas_per_sm, 3u);
  EXPECT_EQ(k.num_regs, 5u + 8u);          // 32-bit units: 5 x b32 + 4 x b64
  EXPECT_FALSE(k.uses_grid_sync);
  const KernelInfo& k2 = p->kernels()[size_t(p->find_kernel("k2"))];
  EXPECT_EQ(k2.reqntid.x, 64u);
  EXPECT_EQ(k2.max_threads_per_block, 64u);
  EXPECT_EQ(p->find_kernel("helper"), -1);

  ASSERT_EQ(p->globals().size(), 4u);
  const GlobalVar& t = p->globals()[size_t(p->find_global("table"))];
  EXPECT_EQ(t.size, 12u);
  EXPECT_EQ(t.space, Space::Global);
  ASSERT_EQ(t.init.size(), 12u);
  EXPECT_EQ(t.init[8], 3);
  const GlobalVar& c = p->globals()[size_t(p->find_global("coef"))];
  EXPECT_EQ(c.space, Space::Const);
  EXPECT_EQ(c.init[7], 0x40);  // 2.0f = 0x40000000
  // Binding resolves address initializers in device memory.
  alignas(16) uint8_t tab[16] = {}, ptrmem[8] = {};
  std::memcpy(ptrmem, p->globals()[size_t(p->find_global("ptr"))].init.data(), 8);
  p->bind_global(p->find_global("ptr"), reinterpret_cast<uint64_t>(ptrmem));
  p->bind_global(p->find_global("table"), reinterpret_cast<uint64_t>(tab));
  uint64_t v;
  std::memcpy(&v, ptrmem, 8);
  EXPECT_EQ(v, reinterpret_cast<uint64_t>(tab) + 4);
}

struct BadCase {
  const char* body;
  const char* must_contain;
};

TEST(Load, MalformedAndUnsupportedAreRefused) {
  const BadCase cases[] = {
      {".entry k() { ret }", "line 4"},                                       // missing ';'
      {".entry k() { .reg .b32 %r; add.u32 %r, %r, %q; ret; }", "%q"},          // undeclared register
      {".entry k() { .reg .b32 %r; .reg .b64 %d; add.u32 %r, %r, %d; ret; }", "%d"},  // operand size
      {".entry k() { .reg .b32 %r; .reg .f32 %f; add.u32 %r, %r, %f; ret; }", "%f"},  // float reg in int op
      {".entry k() { .reg .b32 %r; add.u32 %r, %r; ret; }", "operands"},
      {".entry k() { bra $nowhere; ret; }", "$nowhere"},
      {".entry k() { .reg .b32 %r; tex.2d.v4.f32.f32 {%r, %r, %r, %r}, [t, {%r, %r}]; ret; }", "tex"},
      {".entry k() { .reg .b32 %r; frobnicate.b32 %r, %r; ret; }", "frobnicate"},
      {".entry k() { .reg .b32 %r; add.u32.sat.bogus %r, %r, %r; ret; }", "bogus"},
      {".bogusdirective 12;", "bogusdirective"},
      {".entry k() { .reg .b32 %r; ld.global.u32 %r, [%r]; ret; }", "64-bit"},
      {".entry k() { .reg .pred %p; .reg .b32 %r; @%r bra $L; $L: ret; }", "predicate"},
      {".entry k() { .reg .b32 %r; wmma.load.a.sync.aligned.row.m16n16k16.f16 {%r}, [%r]; ret; }", "wmma"},
      {".entry k() { .reg .b32 %r; call.uni undefined_fn, (%r); ret; }", "undefined_fn"},
      {".entry k(.param .u32 a) { .reg .b32 %r; st.param.u32 [a], %r; ret; }", "read-only"},
      {".entry k() { .reg .b32 %r<4>; mov.u32 %r1, 0x1ffffffffffffffffffff; ret; }", "line 4"},
      {".entry k() { .reg .b32 %r; $L: $L: ret; }", "duplicate label"},
      {".global .u32 x = {1, 2};", "too many initializers"},
      {".entry k() { { .reg .b32 %r; } add.u32 %r, %r, 1; ret; }", "%r"},    // out of scope
      {".entry k() {", "end of input"},
  };
  for (const BadCase& c : cases) {
    std::string err = load_error(c.body);
    EXPECT_NE(err, "<loaded>") << c.body;
    EXPECT_NE(err.find("line "), std::string::npos) << c.body << " -> " << err;
    EXPECT_NE(err.find(c.must_contain), std::string::npos) << c.body << " -> " << err;
  }
  // A trailing NUL (C-string images) is fine; an embedded one is not.
  std::string err0;
  EXPECT_TRUE(Program::load(std::string(kHeader) + ".entry k() { ret; }" + std::string(2, '\0'), err0)) << err0;
  EXPECT_FALSE(Program::load(std::string(kHeader) + std::string(1, '\0') + ".entry k() { ret; }", err0));
  // Unsupported instructions are named in full.
  std::string err = load_error(".entry k() { .reg .b32 %r; .reg .b64 %rd; suld.b.1d.b32.trap {%r}, [%rd, {%r}]; ret; }");
  EXPECT_NE(err.find("unsupported instruction 'suld.b.1d.b32.trap"), std::string::npos) << err;
}

// Mutated and truncated real modules must load or fail cleanly.
TEST(Load, FuzzedInputsNeverCrash) {
  SIM_NEED_PTX(ptx, "control");
  std::string err;
  ASSERT_TRUE(Program::load(ptx, err)) << err;
  std::mt19937 rng(1234);
  int loaded = 0, refused = 0;
  for (size_t cut = 0; cut < ptx.size(); cut += ptx.size() / 97 + 1) {
    auto p = Program::load(std::string_view(ptx).substr(0, cut), err);
    (p ? loaded : refused)++;
    if (!p) {
      EXPECT_FALSE(err.empty());
    }
  }
  const char junk[] = "{}[]();,.%$@!|<>=+-_0123456789abcxyzAZ \n\t\"/*";
  for (int iter = 0; iter < 200; ++iter) {
    std::string m = ptx;
    int edits = 1 + int(rng() % 6);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % m.size();
      switch (rng() % 4) {
        case 0: m[pos] = junk[rng() % (sizeof junk - 1)]; break;
        case 1: m.erase(pos, 1 + rng() % 12); break;
        case 2: m.insert(pos, 1, junk[rng() % (sizeof junk - 1)]); break;
        case 3: {  // duplicate a slice elsewhere
          size_t len = 1 + rng() % 40, from = rng() % m.size();
          m.insert(pos, m.substr(from, len));
          break;
        }
      }
    }
    auto p = Program::load(m, err);
    (p ? loaded : refused)++;
    if (!p) {
      EXPECT_NE(err.find("line"), std::string::npos) << err;
    }
  }
  EXPECT_GT(refused, 150);
  // Deep nesting is rejected without exhausting the stack.
  std::string deep = std::string(kHeader) + ".global .u32 x = " + std::string(100000, '{');
  EXPECT_FALSE(Program::load(deep, err));
  std::string deep2 = std::string(kHeader) + ".entry k() " + std::string(100000, '{');
  EXPECT_FALSE(Program::load(deep2, err));
}

}  // namespace
}  // namespace simgpu::ptx::test
