// Decoding with LoRA adapters applied unmerged (x W^T + s (x A^T) B^T): incremental decode equals
// the training forward, a batch is bitwise each sequence alone, and the engine's recorded
// logprobs equal scoring.
#include <gtest/gtest.h>

#include <cmath>

#include "../policy/test_configs.h"
#include "aha/core/rng.h"
#include "aha/core/threading.h"
#include "aha/policy/model.h"
#include "aha/rollout/engine.h"
#include "test_requests.h"

namespace aha::rollout {
namespace {

using policy::Model;
using policy::ModelConfig;

policy::LoraConfig lora_of(std::vector<std::string> modules) {
  policy::LoraConfig l;
  l.rank = 4;
  l.alpha = 6;
  l.target_modules = std::move(modules);
  l.target_experts = true;
  return l;
}

const std::vector<std::string> kMlaAll = {"q_a_proj", "q_b_proj", "q_proj", "kv_a_proj_with_mqa",
                                          "kv_b_proj", "o_proj", "gate_proj", "up_proj",
                                          "down_proj"};
const std::vector<std::string> kGqaAll = {"q_proj", "k_proj",    "v_proj",  "o_proj",
                                          "gate_proj", "up_proj", "down_proj"};

// Random adapters (B not zero, so that they change every output).
std::unique_ptr<Model<float>> adapted(Json j, const policy::LoraConfig& l, double std = 0.3) {
  ModelConfig c = ModelConfig::from_json(j);
  c.lora = l;
  auto m = std::make_unique<Model<float>>(c);
  m->init_random(17, std);
  Rng rng(23);
  for (size_t i = m->adapter_begin(); i < m->params().size(); ++i) {
    m->params()[i] = float(0.2 * rng.normal());
  }
  return m;
}

std::vector<std::pair<Json, policy::LoraConfig>> cases() {
  return {{policy::testing::tiny_v3_json(), lora_of(kMlaAll)},
          {policy::testing::tiny_v3_json(), lora_of({"q_b_proj", "o_proj", "down_proj"})},
          {policy::testing::tiny_v2_json(), lora_of(kMlaAll)},
          {policy::testing::tiny_qwen2_json(), lora_of(kGqaAll)},
          {policy::testing::tiny_llama_json(), lora_of({"v_proj", "up_proj"})}};
}

TEST(LoraDecode, IncrementalLogitsEqualFullForward) {
  for (const auto& [j, l] : cases()) {
    auto m = adapted(j, l);
    const int V = m->config().vocab_size;
    Decoder dec(*m, true);  // with kv_b_proj adapted, the decoder takes the naive path itself
    std::vector<int32_t> seq = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
    policy::Activations<float> acts;
    m->forward(policy::Batch::from_sequences({seq}), {}, acts);
    std::vector<float> ref(seq.size() * V);
    policy::logits_forward(acts.h_final.data(), m->params().data() + m->lm_head_offset(),
                           ref.data(), int64_t(seq.size()), m->config().hidden_size, V);
    SeqCache cache;
    std::vector<float> logits;
    const size_t prompt = 5;
    dec.prefill({seq.begin(), seq.begin() + prompt}, cache, logits);
    double max_diff = 0;
    for (size_t t = prompt - 1; t + 1 < seq.size(); ++t) {
      if (t >= prompt) dec.decode({seq[t]}, {&cache}, logits);
      for (int v = 0; v < V; ++v) {
        max_diff = std::max(max_diff, double(std::abs(logits[v] - ref[t * V + v])));
      }
    }
    EXPECT_LE(max_diff, 1e-4) << m->config().type_name() << " " << l.target_modules.size();
  }
}

TEST(LoraDecode, BatchedLogitsAreBitwiseThoseOfEachSequenceAlone) {
  Json wide = policy::testing::tiny_v3_json();
  wide.update(Json{{"vocab_size", 67}, {"hidden_size", 48}, {"num_attention_heads", 3},
                   {"intermediate_size", 72}, {"moe_intermediate_size", 40}, {"q_lora_rank", 32},
                   {"kv_lora_rank", 40}, {"qk_nope_head_dim", 16}, {"qk_rope_head_dim", 8},
                   {"v_head_dim", 24}, {"max_position_embeddings", 256}});
  for (const auto& l : {lora_of(kMlaAll), lora_of({"q_b_proj", "o_proj", "gate_proj"})}) {
    auto m = adapted(wide, l, 0.1);
    const int V = m->config().vocab_size;
    Decoder dec(*m);
    const int n_seqs = 7;
    std::vector<SeqCache> caches(n_seqs);
    std::vector<std::vector<float>> alone(n_seqs);
    for (int b = 0; b < n_seqs; ++b) {
      std::vector<int32_t> prompt;
      for (int t = 0; t < 3 + 7 * b; ++t) prompt.push_back((t * 7 + b) % V);
      std::vector<float> logits;
      dec.prefill(prompt, caches[b], logits);
    }
    {
      ThreadLimit one(1);
      for (int b = 0; b < n_seqs; ++b) {
        SeqCache c = caches[b];
        dec.decode({(b * 5 + 1) % V}, {&c}, alone[b]);
      }
    }
    ThreadLimit two(2);
    std::vector<int32_t> tokens;
    std::vector<SeqCache*> ptrs;
    for (int b = 0; b < n_seqs; ++b) {
      tokens.push_back((b * 5 + 1) % V);
      ptrs.push_back(&caches[b]);
    }
    std::vector<float> logits;
    dec.decode(tokens, ptrs, logits);
    for (int b = 0; b < n_seqs; ++b) {
      for (int v = 0; v < V; ++v) ASSERT_EQ(logits[b * V + v], alone[b][v]) << b << " " << v;
    }
  }
}

TEST(LoraDecode, RecordedLogprobsEqualScoring) {
  for (const auto& [j, l] : cases()) {
    auto m = adapted(j, l);
    EngineOptions opts;
    opts.seed = 5;
    Engine engine(*m, opts);
    auto reqs = testing::requests_for(m->config().vocab_size, 3, 4, 12);
    auto out = engine.generate(reqs);
    ASSERT_EQ(out.size(), 12u);
    testing::expect_logprobs_match_forward(*m, reqs, out);
  }
}

}  // namespace
}  // namespace aha::rollout
