// Native sparse attention (attn_nsa.cpp): what the selection may and must contain, and the
// degenerate settings in which a branch is dense causal attention.
#include <gtest/gtest.h>

#include <set>

#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/policy/model.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

using testing::layout_of;

// Runs layer 0's attention of a float model over the packed layout; returns its activations.
AttnActs<double> run_layer0(const Json& j, const SeqLayout& layout) {
  Model<double> m(ModelConfig::from_json(j));
  m.init_random(5, 0.3);
  const int d = m.config().hidden_size;
  Rng rng(9);
  std::vector<double> x(layout.n_tokens() * d), y(x.size());
  for (double& v : x) v = rng.normal();
  AttnActs<double> a;
  m.layers()[0].attn->forward(m.params().data(), x.data(), y.data(), layout, a);
  return a;
}

TEST(Nsa, SelectionIsCausalAndKeepsTheFirstAndOwnBlocks) {
  const SeqLayout layout = layout_of({0, 13, 30});
  const int bs = 3, count = 3;
  const AttnActs<double> a = run_layer0(testing::tiny_llama_nsa_json(bs, count, 2), layout);
  const int64_t n = layout.n_tokens();
  ASSERT_EQ(a.selected.size(), size_t(2 * n));  // two kv heads
  for (size_t r = 0; r < a.selected.size(); ++r) {
    const int64_t i = layout.positions[r % n];
    const auto& keys = a.selected[r];
    ASSERT_FALSE(keys.empty());
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
    EXPECT_LE(keys.back(), i) << "no selected key after the query";
    EXPECT_EQ(keys.front(), 0) << "the first block is always kept";
    EXPECT_EQ(keys.back(), i) << "the query's own block is always kept";
    std::set<int> blocks;
    for (int32_t k : keys) blocks.insert(k / bs);
    EXPECT_LE(blocks.size(), size_t(count));
    EXPECT_EQ(blocks.size(), std::min<size_t>(count, i / bs + 1));
  }
}

// Enough blocks to keep everything: every query is given all its causal keys, so the selection
// branch is dense causal attention; a window as long as the sequence makes the window branch
// dense too. Both compared with the kernel's dense attention on the layer's own q, k, v.
TEST(Nsa, AllBlocksSelectedOrAWholeWindowIsDenseAttention) {
  const SeqLayout layout = layout_of({0, 7, 16});
  const AttnActs<double> a = run_layer0(testing::tiny_llama_nsa_json(2, 8, 9), layout);
  const int64_t n = layout.n_tokens();
  for (size_t r = 0; r < a.selected.size(); ++r) {
    const int64_t i = layout.positions[r % n];
    EXPECT_EQ(a.selected[r].size(), size_t(i + 1));
  }
  const ModelConfig c = ModelConfig::from_json(testing::tiny_llama_json());
  AttnShape s{c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.head_dim,
              c.softmax_scale()};
  std::vector<double> dense(n * c.num_attention_heads * c.head_dim), lse(n * c.num_attention_heads);
  // Slots as attn_nsa.cpp lays them out: 0..2 q, k, v; 5 the selection branch; 6 the window's.
  attention_forward(a[0].data(), a[1].data(), a[2].data(), dense.data(), lse.data(),
                    layout.seq_starts, s);
  for (size_t e = 0; e < dense.size(); ++e) {
    EXPECT_NEAR(a[5][e], dense[e], 1e-12) << "selection branch " << e;
    EXPECT_NEAR(a[6][e], dense[e], 1e-12) << "window branch " << e;
  }
}

TEST(Nsa, BadConfigNamesTheKey) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, Json>>{
           {"block_size", 0}, {"block_counts", 1}, {"window_size", -1}, {"block_size", "x"}}) {
    Json j = testing::tiny_llama_nsa_json();
    j["nsa"][key] = value;
    try {
      ModelConfig::from_json(j);
      ADD_FAILURE() << key << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("nsa." + key), std::string::npos) << e.what();
    }
  }
  Json mla = testing::tiny_v3_json();
  mla["nsa"] = Json::object();
  EXPECT_THROW(ModelConfig::from_json(mla), Error);
}

}  // namespace
}  // namespace aha::policy
