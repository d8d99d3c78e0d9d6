// The decode path against the training path, recorded logprobs against scoring, determinism
// across threads and batch mixes, and bad prompts (the sampler: sampling_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <thread>

#include "../policy/test_configs.h"
#include "test_requests.h"
#include "aha/core/threading.h"
#include "aha/policy/layers.h"
#include "aha/policy/model.h"
#include "aha/rollout/engine.h"

namespace aha::rollout {
namespace {

using policy::Model;
using policy::ModelConfig;

std::unique_ptr<Model<float>> make_model(const Json& j, double std = 0.3) {
  auto m = std::make_unique<Model<float>>(ModelConfig::from_json(j));
  m->init_random(17, std);
  return m;
}

std::vector<Json> all_configs() {
  return {policy::testing::tiny_v3_json(),     policy::testing::tiny_v2_json(),
          policy::testing::tiny_llama_json(),  policy::testing::tiny_qwen2_json(),
          policy::testing::tiny_v3_mhc_json(), policy::testing::tiny_llama_mhc_json(),
          policy::testing::tiny_llama_nsa_json(), policy::testing::tiny_llama_nsa2_json(),
          policy::testing::tiny_llama_engram_json(), policy::testing::tiny_v3_mhc_engram_json(),
          policy::testing::tiny_v32_json()};
}

// Logits of every position from the training-path forward.
std::vector<float> full_logits(const Model<float>& m, const std::vector<int32_t>& seq) {
  policy::Batch b = policy::Batch::from_sequences({seq});
  policy::Activations<float> acts;
  m.forward(b, {}, acts);
  const auto& c = m.config();
  std::vector<float> out(seq.size() * c.vocab_size);
  policy::logits_forward(acts.h_final.data(), m.params().data() + m.lm_head_offset(), out.data(),
                         static_cast<int64_t>(seq.size()), c.hidden_size, c.vocab_size);
  return out;
}

TEST(Decode, IncrementalLogitsEqualFullForward) {
  for (const Json& j : all_configs()) {
    auto m = make_model(j);
    const int V = m->config().vocab_size;
    for (bool absorbed : {true, false}) {
      Decoder dec(*m, absorbed);
      std::vector<int32_t> seq = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
      std::vector<float> ref = full_logits(*m, seq);
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
      EXPECT_LE(max_diff, 1e-4) << m->config().type_name() << (absorbed ? " absorbed" : " naive");
      EXPECT_EQ(cache.len, static_cast<int64_t>(seq.size()) - 1);
    }
  }
}

// Wider than the tiny configs, with odd sizes, so the decode kernels' SIMD paths and their tails
// run: cache rows of 48 floats, heads of 3, experts of 40, contexts past 16 positions.
Json wide_v3_json() {
  Json j = policy::testing::tiny_v3_json();
  j.update(Json{{"vocab_size", 67},
                {"hidden_size", 48},
                {"num_attention_heads", 3},
                {"intermediate_size", 72},
                {"moe_intermediate_size", 40},
                {"q_lora_rank", 32},
                {"kv_lora_rank", 40},
                {"qk_nope_head_dim", 16},
                {"qk_rope_head_dim", 8},
                {"v_head_dim", 24},
                {"max_position_embeddings", 256}});
  return j;
}

// A GQA student wide enough for whole SIMD vectors per head (head_dim 20: one vector and a tail).
Json wide_llama_json() {
  Json j = policy::testing::tiny_llama_json();
  j.update(Json{{"vocab_size", 61},
                {"hidden_size", 120},
                {"num_attention_heads", 6},
                {"num_key_value_heads", 2},
                {"intermediate_size", 88},
                {"max_position_embeddings", 256}});
  return j;
}

// Engram's conv history and n-gram context through decode, from prompts shorter than the n-gram
// (pads) and than the conv reach, to past it.
TEST(Decode, EngramDecodeEqualsFullForwardFromAnyPromptLength) {
  for (const Json& j : {policy::testing::tiny_llama_engram_json(),
                        policy::testing::tiny_v3_mhc_engram_json()}) {
    auto m = make_model(j);
    const int V = m->config().vocab_size;
    Decoder dec(*m);
    std::vector<int32_t> seq = {3, 2, 2, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6};
    const std::vector<float> ref = full_logits(*m, seq);
    for (size_t prompt : {1, 2, 3, 12}) {
      SeqCache cache;
      std::vector<float> logits;
      dec.prefill({seq.begin(), seq.begin() + prompt}, cache, logits);
      double max_diff = 0;
      for (size_t t = prompt - 1; t + 1 < seq.size(); ++t) {
        if (t >= prompt) dec.decode({seq[t]}, {&cache}, logits);
        for (int v = 0; v < V; ++v) {
          max_diff = std::max(max_diff, double(std::abs(logits[v] - ref[t * V + v])));
        }
      }
      EXPECT_LE(max_diff, 1e-4) << m->config().type_name() << " prompt " << prompt;
    }
  }
}

TEST(Decode, LongContextLogitsEqualFullForward) {
  for (const Json& j : {wide_v3_json(), wide_llama_json()}) {
    auto m = make_model(j, 0.1);
    const int V = m->config().vocab_size;
    std::vector<int32_t> seq;
    for (int t = 0; t < 120; ++t) seq.push_back((t * 17 + 5) % V);
    std::vector<float> ref = full_logits(*m, seq);
    for (bool absorbed : {true, false}) {
      Decoder dec(*m, absorbed);
      SeqCache cache;
      std::vector<float> logits;
      const size_t prompt = 7;
      dec.prefill({seq.begin(), seq.begin() + prompt}, cache, logits);
      double max_diff = 0;
      for (size_t t = prompt - 1; t + 1 < seq.size(); ++t) {
        if (t >= prompt) dec.decode({seq[t]}, {&cache}, logits);
        for (int v = 0; v < V; ++v) {
          max_diff = std::max(max_diff, double(std::abs(logits[v] - ref[t * V + v])));
        }
      }
      EXPECT_LE(max_diff, 1e-4) << m->config().type_name() << (absorbed ? " absorbed" : " naive");
    }
  }
}

// A sequence's logits are the same bits whatever else is decoded beside it, at any thread count.
TEST(Decode, BatchedLogitsAreBitwiseThoseOfEachSequenceAlone) {
  Json wide_mhc = wide_v3_json();
  wide_mhc["hc_mult"] = 4;
  Json wide_nsa = wide_llama_json();
  wide_nsa["nsa"] = Json{{"block_size", 4}, {"block_counts", 3}, {"window_size", 8}};
  Json wide_engram = wide_mhc;  // V4.1 style: four streams, Engram in both layers
  wide_engram["engram"] = Json{{"max_ngram_size", 3}, {"n_head_per_ngram", 4},
                               {"n_embed_per_ngram", 32}, {"layer_ids", {0, 1}},
                               {"engram_vocab_size", {101, 103}}, {"kernel_size", 4}};
  Json wide_dsa = wide_v3_json();  // V3.2: an indexer keeping 5 keys per query
  wide_dsa.update(Json{{"model_type", "deepseek_v32"}, {"index_n_heads", 2},
                       {"index_head_dim", 8}, {"index_topk", 5}});
  for (const Json& j :
       {wide_v3_json(), wide_llama_json(), wide_mhc, wide_nsa, wide_engram, wide_dsa}) {
    auto m = make_model(j, 0.1);
    const int V = m->config().vocab_size;
    Decoder dec(*m);
    // 18 rows at even steps: two threads decode the attention in blocks of rows
    // (decode_row_blocks); the 9 of odd steps run whole.
    const int n_seqs = 18;
    std::vector<SeqCache> prefilled(n_seqs);
    std::vector<int32_t> next(n_seqs);
    for (int b = 0; b < n_seqs; ++b) {
      std::vector<int32_t> prompt;
      for (int t = 0; t < 3 + 11 * (b % 9) + b / 9; ++t) prompt.push_back((t * 7 + b) % V);
      std::vector<float> logits;
      dec.prefill(prompt, prefilled[b], logits);
      next[b] = (b * 5 + 1) % V;
    }
    // Alone, one thread: three steps each.
    std::vector<std::vector<float>> alone(n_seqs);
    {
      ThreadLimit one(1);
      for (int b = 0; b < n_seqs; ++b) {
        SeqCache c = prefilled[b];
        std::vector<float> logits;
        for (int step = 0; step < 3; ++step) {
          dec.decode({(next[b] + step) % V}, {&c}, logits);
          alone[b].insert(alone[b].end(), logits.begin(), logits.end());
        }
      }
    }
    for (int threads : {1, 2}) {
      ThreadLimit limit(threads);
      std::vector<SeqCache> caches = prefilled;
      for (int step = 0; step < 3; ++step) {
        std::vector<int32_t> tokens;
        std::vector<SeqCache*> ptrs;
        // Every other sequence at odd steps, all of them at even ones.
        for (int b = 0; b < n_seqs; ++b) {
          if (step % 2 == 1 && b % 2 == 1) continue;
          tokens.push_back((next[b] + (step == 2 && b % 2 == 1 ? 1 : step)) % V);
          ptrs.push_back(&caches[b]);
        }
        std::vector<float> logits;
        dec.decode(tokens, ptrs, logits);
        size_t row = 0;
        for (int b = 0; b < n_seqs; ++b) {
          if (step % 2 == 1 && b % 2 == 1) continue;
          const int own_step = (step == 2 && b % 2 == 1) ? 1 : step;
          for (int v = 0; v < V; ++v) {
            ASSERT_EQ(logits[row * V + v], alone[b][own_step * V + v])
                << "seq " << b << " step " << step << " threads " << threads;
          }
          ++row;
        }
      }
    }
  }
}

// A Decoder is shared by callers on several threads (each with its own caches): the one that
// borrows the kept step buffers and the ones that make their own get each sequence's bits.
TEST(Decode, ConcurrentCallersOnOneDecoderGetEachSequencesBits) {
  for (const Json& j : {wide_v3_json(), wide_llama_json()}) {
    auto m = make_model(j, 0.1);
    const int V = m->config().vocab_size, n_seqs = 8, steps = 3;
    Decoder dec(*m);
    std::vector<SeqCache> prefilled(n_seqs);
    for (int b = 0; b < n_seqs; ++b) {
      std::vector<int32_t> prompt;
      for (int t = 0; t < 2 + 5 * b; ++t) prompt.push_back((t * 3 + b) % V);
      std::vector<float> logits;
      dec.prefill(prompt, prefilled[b], logits);
    }
    auto run = [&](int b0, int b1, std::vector<std::vector<float>>& out) {
      std::vector<SeqCache> caches(prefilled.begin() + b0, prefilled.begin() + b1);
      std::vector<SeqCache*> ptrs;
      for (auto& c : caches) ptrs.push_back(&c);
      for (int step = 0; step < steps; ++step) {
        std::vector<int32_t> tokens;
        for (int b = b0; b < b1; ++b) tokens.push_back((b * 5 + step) % V);
        std::vector<float> logits;
        dec.decode(tokens, ptrs, logits);
        for (int b = b0; b < b1; ++b) {
          out[b].insert(out[b].end(), logits.begin() + (b - b0) * V,
                        logits.begin() + (b - b0 + 1) * V);
        }
      }
    };
    std::vector<std::vector<float>> alone(n_seqs);
    for (int b = 0; b < n_seqs; ++b) run(b, b + 1, alone);
    for (int round = 0; round < 4; ++round) {
      std::vector<std::vector<float>> together(n_seqs);
      std::vector<std::thread> callers;
      for (int t = 0; t < 4; ++t) callers.emplace_back([&, t] { run(2 * t, 2 * t + 2, together); });
      for (auto& c : callers) c.join();
      for (int b = 0; b < n_seqs; ++b) {
        ASSERT_EQ(together[b], alone[b]) << m->config().type_name() << " seq " << b;
      }
    }
  }
}

// Each prompt prefilled alone, on one thread: the bits that prompts prefilled together must give.
struct Alone {
  std::vector<SeqCache> caches;
  std::vector<std::vector<float>> logits;
  std::vector<Routing> routing;
};
Alone prefill_alone(const Decoder& dec, const std::vector<std::vector<int32_t>>& prompts) {
  Alone a{std::vector<SeqCache>(prompts.size()), std::vector<std::vector<float>>(prompts.size()),
          std::vector<Routing>(prompts.size())};
  ThreadLimit one(1);
  for (size_t b = 0; b < prompts.size(); ++b) {
    dec.prefill(prompts[b], a.caches[b], a.logits[b], &a.routing[b]);
  }
  return a;
}

// Prompts prefilled together share every GEMM: each still gets the bits (last-row logits, cache
// rows, routing) it gets alone, in any mix and at any thread count.
TEST(Decode, PrefillTogetherIsBitwiseEachPromptAlone) {
  std::vector<Json> configs = all_configs();
  configs.push_back(wide_v3_json());
  for (const Json& j : configs) {
    auto m = make_model(j, 0.1);
    const int V = m->config().vocab_size;
    Decoder dec(*m);
    std::vector<std::vector<int32_t>> prompts;
    for (int len : {5, 1, 17, 9, 33, 3, 4, 6}) {
      prompts.emplace_back();
      for (int t = 0; t < len; ++t) prompts.back().push_back((t * 7 + len) % V);
    }
    const Alone alone = prefill_alone(dec, prompts);
    for (int threads : {1, 2}) {
      ThreadLimit limit(threads);
      // All of them, then every other one in reverse order.
      for (const std::vector<size_t>& mix :
           {std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7}, {4, 2, 0}, {5, 6, 7, 3, 5}}) {
        std::vector<const std::vector<int32_t>*> ps;
        std::vector<SeqCache> caches(mix.size());
        std::vector<SeqCache*> cs;
        for (size_t i = 0; i < mix.size(); ++i) {
          ps.push_back(&prompts[mix[i]]);
          cs.push_back(&caches[i]);
        }
        std::vector<float> logits;
        std::vector<Routing> routing;
        dec.prefill(ps, cs, logits, &routing);
        for (size_t i = 0; i < mix.size(); ++i) {
          const size_t b = mix[i];
          const std::vector<float> row(logits.begin() + i * V, logits.begin() + (i + 1) * V);
          EXPECT_EQ(row, alone.logits[b]) << m->config().type_name() << " prompt " << b;
          EXPECT_EQ(caches[i].rows, alone.caches[b].rows)
              << m->config().type_name() << " prompt " << b;
          EXPECT_EQ(caches[i].len, alone.caches[b].len);
          EXPECT_EQ(routing[i], alone.routing[b]) << m->config().type_name() << " prompt " << b;
        }
      }
    }
  }
}

// A long prefill runs in passes of a bounded number of rows, and with two threads or more in one
// group of whole prompts per thread; a prompt split between two passes, or in either group,
// still gets the bits it gets alone.
TEST(Decode, PrefillInPassesIsBitwiseEachPromptAlone) {
  std::vector<Json> configs = all_configs();  // the lanes: every attention and block kind
  configs.push_back(wide_v3_json());
  for (const Json& j : configs) {
    auto m = make_model(j, 0.1);
    const int V = m->config().vocab_size;
    const int max_len = m->config().max_position_embeddings - 1;
    Decoder dec(*m);
    // At least 1,139 rows (more than a pass, and a group a thread at 2 and 3 threads): prompts
    // of these lengths, cut at the model's context, until there are as many.
    std::vector<std::vector<int32_t>> prompts;
    const std::vector<int> lens = {200, 150, 233, 180, 199, 170, 7};
    for (size_t i = 0, rows = 0; i < lens.size() || rows < 1139; ++i) {
      const int len = lens[i % lens.size()];
      prompts.emplace_back();
      for (int t = 0; t < std::min(len, max_len); ++t) prompts.back().push_back((t * 7 + len) % V);
      rows += prompts.back().size();
    }
    std::vector<const std::vector<int32_t>*> ps;
    std::vector<SeqCache> caches(prompts.size());
    std::vector<SeqCache*> cs;
    for (size_t b = 0; b < prompts.size(); ++b) {
      ps.push_back(&prompts[b]);
      cs.push_back(&caches[b]);
    }
    const Alone alone = prefill_alone(dec, prompts);
    for (int threads : {1, 2, 3}) {
      ThreadLimit limit(threads);
      std::vector<float> logits;
      std::vector<Routing> routing;
      dec.prefill(ps, cs, logits, &routing);
      ASSERT_EQ(logits.size(), prompts.size() * V);
      for (size_t b = 0; b < prompts.size(); ++b) {
        const std::vector<float> row(logits.begin() + b * V, logits.begin() + (b + 1) * V);
        const std::string at = std::string(m->config().type_name()) + " prompt " +
                               std::to_string(b) + ", threads " + std::to_string(threads);
        EXPECT_EQ(row, alone.logits[b]) << at;
        EXPECT_EQ(caches[b].rows, alone.caches[b].rows) << at;
        EXPECT_EQ(caches[b].len, alone.caches[b].len) << at;
        EXPECT_EQ(routing[b], alone.routing[b]) << at;
      }
    }
  }
}

// Prefill rebuilds an MLA prompt's keys and values once for all its rows; each row still gets
// the bits of the naive oracle decoding the prompt one token at a time (cache, logits, routing).
// Other kinds: prefill is their decode, token by token.
TEST(Decode, PrefillIsBitwiseTheOracleDecodingTokenByToken) {
  for (const Json& j : all_configs()) {
    auto m = make_model(j, 0.1);
    if (m->config().engram) continue;  // prefilled with the training layout (prefill_engram)
    const int V = m->config().vocab_size;
    std::vector<int32_t> prompt;
    for (int t = 0; t < 21; ++t) prompt.push_back((t * 5 + 3) % V);
    SeqCache filled;
    std::vector<float> logits;
    Routing routing;
    Decoder(*m).prefill(prompt, filled, logits, &routing);
    // A sparse kind's prompt rows attend their selected keys through the absorbed path, as its
    // decode does; the rest rebuild keys and values as the naive oracle does.
    const bool keyed = m->layers()[0].attn->selection_width() > 0;
    Decoder oracle(*m, keyed);
    SeqCache stepped;
    std::vector<float> step_logits;
    Routing step_routing;
    oracle.prefill({prompt[0]}, stepped, step_logits, &step_routing);
    for (size_t t = 1; t < prompt.size(); ++t) {
      Routing r;
      oracle.decode({prompt[t]}, {&stepped}, step_logits, &r);
      for (size_t l = 0; l < r.size(); ++l) {
        step_routing[l].insert(step_routing[l].end(), r[l].begin(), r[l].end());
      }
    }
    EXPECT_EQ(logits, step_logits) << m->config().type_name();
    EXPECT_EQ(filled.rows, stepped.rows) << m->config().type_name();
    EXPECT_EQ(routing, step_routing) << m->config().type_name();
  }
}

TEST(Decode, CacheHoldsOnlyTheLatent) {
  auto m = make_model(policy::testing::tiny_v3_json());
  Decoder dec(*m);
  const auto& c = m->config();
  EXPECT_EQ(dec.cache_bytes_per_token(),
            int64_t{4} * c.num_hidden_layers * (c.kv_lora_rank + c.qk_rope_head_dim));
  EXPECT_GT(dec.full_kv_bytes_per_token(), dec.cache_bytes_per_token());
}

using testing::requests_for;

TEST(Engine, RecordedLogprobsEqualScoring) {
  for (const Json& j : all_configs()) {
    auto m = make_model(j);
    EngineOptions opts;
    opts.seed = 5;
    Engine engine(*m, opts);
    auto reqs = requests_for(m->config().vocab_size, 3, 4, 12);
    reqs[1].params.temperature = 0.7;
    reqs[1].params.top_p = 0.9;
    auto out = engine.generate(reqs);
    ASSERT_EQ(out.size(), 12u);
    testing::expect_logprobs_match_forward(*m, reqs, out);
    for (const Rollout& comp : out) {
      for (float lp : comp.sampling_dist_logprobs) EXPECT_LE(lp, 1e-6f);
    }
  }
}

using ByKey = std::map<std::pair<int64_t, int64_t>, std::vector<int32_t>>;  // (group, sample)

ByKey by_key(const std::vector<Rollout>& v) {
  ByKey m;
  for (const auto& c : v) m[{c.group, c.sample_index}] = c.completion_ids;
  return m;
}

TEST(Engine, SameSeedSameOutputForAnyThreadsAndBatchMix) {
  auto m = make_model(policy::testing::tiny_v3_json());
  const int V = m->config().vocab_size;
  auto reqs = requests_for(V, 5, 3, 10);
  EngineOptions opts;
  opts.seed = 11;
  std::vector<Rollout> base;
  {
    ThreadLimit one(1);
    opts.max_batch = 64;
    base = Engine(*m, opts).generate(reqs);
  }
  for (int threads : {1, 2}) {
    for (int max_batch : {1, 3, 7, 64}) {
      ThreadLimit limit(threads);
      opts.max_batch = max_batch;
      auto out = Engine(*m, opts).generate(reqs);
      EXPECT_EQ(by_key(out), by_key(base)) << threads << " threads, max_batch " << max_batch;
    }
  }
  // A request keeps its completions when other requests join the batch (same prompt index).
  std::vector<Request> mixed = reqs;
  mixed[2].n = 6;
  mixed[4].prompt.push_back(1);
  auto out = by_key(Engine(*m, opts).generate(mixed));
  auto want = by_key(base);
  for (int s = 0; s < 3; ++s) EXPECT_EQ((out[{2, s}]), (want[{2, s}]));
  EXPECT_EQ((out[{0, 1}]), (want[{0, 1}]));
  opts.seed = 12;
  EXPECT_NE(by_key(Engine(*m, opts).generate(reqs)), want);
}

TEST(Engine, BadPromptsFailAloneAndFinishReasons) {
  auto m = make_model(policy::testing::tiny_llama_json());
  const int V = m->config().vocab_size;
  auto reqs = requests_for(V, 2, 2, 4);
  Request empty, too_long, bad_id;
  too_long.prompt.assign(64, 1);
  bad_id.prompt = {1, V};
  reqs.push_back(empty);
  reqs.push_back(too_long);
  reqs.push_back(bad_id);
  Engine engine(*m, EngineOptions{});
  auto out = engine.generate(reqs);
  ASSERT_EQ(out.size(), 7u);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(out[i].finish_reason == "stop" || out[i].finish_reason == "length");
  EXPECT_EQ(out[4].error, "empty prompt");
  EXPECT_NE(out[5].error.find("context"), std::string::npos);
  EXPECT_NE(out[6].error.find("outside the vocabulary"), std::string::npos);
  for (int i = 0; i < 4; ++i) {
    if (out[i].finish_reason == "length") {
      EXPECT_EQ(out[i].completion_ids.size(), 4u);
    }
    if (out[i].finish_reason == "stop") {
      EXPECT_EQ(out[i].completion_ids.back(), 0);
    }
  }
  std::atomic<bool> cancel{true};
  auto cut = engine.generate(requests_for(V, 2, 2, 4), {}, &cancel);
  for (const auto& c : cut) EXPECT_EQ(c.finish_reason, "cancelled");
}

TEST(Engine, KeepRoutingReplaysTheSampledExperts) {
  auto m = make_model(policy::testing::tiny_v3_json());
  EngineOptions opts;
  opts.record_routing = true;
  auto reqs = requests_for(m->config().vocab_size, 2, 2, 8);
  testing::expect_logprobs_match_forward(*m, reqs, Engine(*m, opts).generate(reqs), true);
}

// Native sparse attention under keep routing: the engine records each token's blocks per kv
// group, a training forward that replays them attends to exactly those keys and reproduces the
// sampled logprobs, and a different (valid) replayed selection is honoured.
TEST(Engine, KeepRoutingReplaysTheSampledSparseSelection) {
  auto m = make_model(policy::testing::tiny_llama_nsa_json(1, 3, 2));
  const ModelConfig& c = m->config();
  EngineOptions opts;
  opts.record_routing = true;
  auto reqs = requests_for(c.vocab_size, 2, 2, 8);
  auto out = Engine(*m, opts).generate(reqs);
  const int64_t W = m->layers()[0].attn->selection_width();
  ASSERT_EQ(W, c.num_key_value_heads * 3);
  for (const auto& comp : out) {
    std::vector<int32_t> seq = reqs[comp.group].prompt;
    seq.insert(seq.end(), comp.completion_ids.begin(), comp.completion_ids.end());
    ASSERT_EQ(comp.routing.size(), size_t(c.num_hidden_layers));
    ASSERT_EQ(comp.routing[0].size(), (seq.size() - 1) * W);
    Routing replay = comp.routing;
    for (auto& l : replay) l.resize(seq.size() * W, -1);  // the last token chooses afresh
    policy::ForwardOptions fo;
    fo.replay_topk = &replay;
    policy::Activations<float> acts, fresh;
    const auto batch = policy::Batch::from_sequences({seq});
    m->forward(batch, fo, acts);
    const size_t p = reqs[comp.group].prompt.size();
    for (size_t i = 0; i < comp.completion_ids.size(); ++i) {
      EXPECT_NEAR(comp.sampled_logprobs[i], acts.logprob[p - 1 + i], 1e-4);
    }
    // The replayed forward's keys are the recorded blocks' tokens (block size 1: the blocks).
    const int64_t n = static_cast<int64_t>(seq.size());
    for (int64_t t = 0; t + 1 < n; ++t) {
      for (int kh = 0; kh < c.num_key_value_heads; ++kh) {
        std::vector<int32_t> want;
        for (int64_t k = 0; k < 3; ++k) {
          const int32_t b = comp.routing[1][(t * c.num_key_value_heads + kh) * 3 + k];
          if (b >= 0) want.push_back(b);
        }
        EXPECT_EQ(acts.layers[1].attn.selected[size_t(kh) * n + t], want) << t;
      }
    }
    // Another valid selection for the last position: its blocks 0, own, and the one before own.
    const int64_t t = n - 2;
    if (t < 3) continue;
    for (int kh = 0; kh < c.num_key_value_heads; ++kh) {
      int32_t* r = replay[0].data() + (t * c.num_key_value_heads + kh) * 3;
      r[0] = 0, r[1] = static_cast<int32_t>(t - 1), r[2] = static_cast<int32_t>(t);
    }
    m->forward(batch, fo, fresh);
    EXPECT_EQ(fresh.layers[0].attn.selected[size_t(0) * n + t], (std::vector<int32_t>{0, int32_t(t - 1), int32_t(t)}));
  }
}

}  // namespace
}  // namespace aha::rollout
