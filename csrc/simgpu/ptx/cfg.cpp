// Reconvergence points: the immediate post-dominator of every branch, computed
// on the basic-block graph of one function (Cooper/Harvey/Kennedy iteration
// on the reverse graph).  A warp that splits at a branch runs each path until
// it reaches that point, where the paths merge again.
#include <algorithm>

#include "ptx/compile.h"

namespace simgpu::ptx {

void compute_reconvergence(ProgramIR& ir, uint32_t begin, uint32_t end, uint32_t exit_pc,
                           const std::vector<uint8_t>& kind, const std::vector<uint32_t>& target) {
  using Flow = FnCompiler::Flow;
  const uint32_t n = end - begin;
  if (n == 0) return;
  auto flow = [&](uint32_t pc) { return Flow(kind[pc - begin]); };
  auto guarded = [&](uint32_t pc) { return ir.code[pc].guard != kTrueWord; };

  // Leaders.
  std::vector<uint8_t> leader(n + 1, 0);
  leader[0] = 1;
  for (uint32_t pc = begin; pc < end; ++pc) {
    Flow f = flow(pc);
    if (f == Flow::Branch) {
      leader[target[pc - begin] - begin] = 1;
      leader[pc - begin + 1] = 1;
    } else if (f == Flow::Table) {
      for (uint32_t t : ir.branch_tables[ir.code[pc].aux]) leader[t - begin] = 1;
      leader[pc - begin + 1] = 1;
    } else if (f == Flow::Exit && !guarded(pc)) {
      leader[pc - begin + 1] = 1;
    }
  }
  std::vector<uint32_t> block_of(n);
  std::vector<uint32_t> first;
  for (uint32_t i = 0; i < n; ++i) {
    if (leader[i]) first.push_back(begin + i);
    block_of[i] = uint32_t(first.size() - 1);
  }
  const uint32_t nb = uint32_t(first.size());
  const uint32_t EXIT = nb;
  auto last_of = [&](uint32_t b) { return (b + 1 < nb ? first[b + 1] : end) - 1; };

  // Successors.
  std::vector<std::vector<uint32_t>> succ(nb + 1), pred(nb + 1);
  const uint32_t exit_block = block_of[exit_pc - begin];
  for (uint32_t b = 0; b < nb; ++b) {
    uint32_t pc = last_of(b);
    Flow f = flow(pc);
    auto add = [&](uint32_t s) {
      if (std::find(succ[b].begin(), succ[b].end(), s) == succ[b].end()) succ[b].push_back(s);
    };
    auto fall = [&] { add(pc + 1 < end ? block_of[pc + 1 - begin] : EXIT); };
    if (pc == exit_pc) {
      add(EXIT);
    } else if (f == Flow::Branch) {
      add(block_of[target[pc - begin] - begin]);
      if (guarded(pc)) fall();
    } else if (f == Flow::Table) {
      for (uint32_t t : ir.branch_tables[ir.code[pc].aux]) add(block_of[t - begin]);
      if (guarded(pc)) fall();
    } else if (f == Flow::Exit && !guarded(pc)) {
      // Lanes that exit never come back; for the analysis they go to the
      // function's exit so the other paths wait for them there.
      add(exit_block);
    } else {
      fall();
    }
  }
  for (uint32_t b = 0; b < nb; ++b)
    for (uint32_t s : succ[b]) pred[s].push_back(b);

  // Postorder of the reverse graph from EXIT (iterative DFS over preds).
  std::vector<uint32_t> order;
  std::vector<int> po(nb + 1, -1);
  {
    std::vector<uint8_t> seen(nb + 1, 0);
    std::vector<std::pair<uint32_t, size_t>> st;
    st.push_back({EXIT, 0});
    seen[EXIT] = 1;
    while (!st.empty()) {
      auto& [v, i] = st.back();
      if (i < pred[v].size()) {
        uint32_t w = pred[v][i++];
        if (!seen[w]) {
          seen[w] = 1;
          st.push_back({w, 0});
        }
      } else {
        po[v] = int(order.size());
        order.push_back(v);
        st.pop_back();
      }
    }
  }
  std::vector<int> ipdom(nb + 1, -1);
  ipdom[EXIT] = int(EXIT);
  auto intersect = [&](int a, int b) {
    while (a != b) {
      while (po[a] < po[b]) a = ipdom[a];
      while (po[b] < po[a]) b = ipdom[b];
    }
    return a;
  };
  bool changed = true;
  while (changed) {
    changed = false;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      uint32_t v = *it;
      if (v == EXIT) continue;
      int nd = -1;
      for (uint32_t s : succ[v]) {
        if (ipdom[s] < 0) continue;
        nd = nd < 0 ? int(s) : intersect(int(s), nd);
      }
      if (nd >= 0 && ipdom[v] != nd) {
        ipdom[v] = nd;
        changed = true;
      }
    }
  }
  for (uint32_t b = 0; b < nb; ++b) {
    uint32_t pc = last_of(b);
    Flow f = flow(pc);
    if (f != Flow::Branch && f != Flow::Table) continue;
    int d = ipdom[b];
    // Blocks that never reach the exit (endless loops) have no
    // post-dominator; their paths merge only at the function exit.
    uint32_t rpc = (d < 0 || uint32_t(d) == EXIT) ? exit_pc : first[uint32_t(d)];
    ir.code[pc].aux2 = rpc;
  }
}

}  // namespace simgpu::ptx
