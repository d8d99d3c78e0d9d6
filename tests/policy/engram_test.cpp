// Engram: numpy's generator and the n-gram hash against tests/reference (integer-exact), the
// prime moduli, locality of one token, the zero value projection, finite differences of the
// layer through the looked-up table rows, config errors and the sparse optimizer path.
#include "aha/policy/engram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "policy/checkpoint_helpers.h"
#include "policy/test_configs.h"

namespace aha::policy {
namespace {

Json data(const std::string& name) {
  return load_json_file(std::string(AHA_TEST_DATA_DIR) + "/" + name);
}

TEST(NumpyRng, RawDrawsAndBoundedIntegersAreNumpys) {
  const Json j = data("numpy_rng.json");
  for (const Json& r : j["raw"]) {
    NumpyRng rng(r["seed"].get<uint64_t>());
    for (const Json& v : r["u64"]) {
      EXPECT_EQ(rng.next_u64(), std::stoull(v.get<std::string>())) << "seed " << r["seed"];
    }
  }
  int cases = 0;
  for (const Json& c : j["integers"]) {
    NumpyRng rng(c["seed"].get<uint64_t>());
    const auto got = rng.integers(c["low"].get<int64_t>(), c["high"].get<int64_t>(), 6);
    EXPECT_EQ(got, c["values"].get<std::vector<int64_t>>())
        << "seed " << c["seed"] << " low " << c["low"] << " high " << c["high"];
    ++cases;
  }
  EXPECT_GT(cases, 200);
}

EngramConfig engram_of(const Json& e) {
  EngramConfig g;
  g.max_ngram_size = e["max_ngram_size"];
  g.n_head_per_ngram = e["n_head_per_ngram"];
  g.n_embed_per_ngram = e["n_embed_per_ngram"];
  g.layer_ids = e["layer_ids"].get<std::vector<int>>();
  g.engram_vocab_size = e["engram_vocab_size"].get<std::vector<int64_t>>();
  g.seed = e["seed"];
  g.pad_id = e["pad_id"];
  return g;
}

TEST(EngramHash, IndicesPrimesAndMultipliersMatchReference) {
  int64_t compared = 0;
  for (const Json& c : data("engram_hash.json")) {
    EngramConfig g = engram_of(c["engram"]);
    if (!c["compression"].is_null()) {
      g.compression = std::make_shared<const std::vector<int32_t>>(
          c["compression"].get<std::vector<int32_t>>());
    }
    const int vocab = c["vocab_size"];
    const auto seqs = c["sequences"].get<std::vector<std::vector<int32_t>>>();
    const Batch batch = Batch::from_sequences(seqs);
    SeqLayout layout;
    layout.seq_starts = batch.seq_starts;
    const auto ids = engram_ngram_ids(batch.tokens.data(), layout, g.max_ngram_size);
    for (const Json& l : c["layers"]) {
      const EngramHash h = make_engram_hash(g, vocab, l["layer"]);
      EXPECT_EQ(h.primes, l["primes"].get<std::vector<int64_t>>()) << c["name"];
      EXPECT_EQ(h.multipliers, l["multipliers"].get<std::vector<int64_t>>()) << c["name"];
      const int H = g.n_heads();
      std::vector<int64_t> idx(batch.n_tokens() * H);
      engram_hash_indices(h, ids.data(), batch.n_tokens(), idx.data());
      const auto want = l["hashes"].get<std::vector<std::vector<std::vector<int64_t>>>>();
      for (size_t s = 0; s < seqs.size(); ++s) {
        for (size_t t = 0; t < seqs[s].size(); ++t) {
          const int64_t row = batch.seq_starts[s] + static_cast<int64_t>(t);
          const std::vector<int64_t> got(idx.begin() + row * H, idx.begin() + (row + 1) * H);
          EXPECT_EQ(got, want[s][t])
              << c["name"] << " layer " << l["layer"] << " seq " << s << " t " << t;
          compared += H;
        }
      }
    }
  }
  EXPECT_GT(compared, 500);
}

// One Engram layer on its own, in double, with every parameter random.
struct Layer {
  ModelConfig c;
  ParamTable table;
  EngramP p;
  std::vector<double> P, G;
  explicit Layer(const Json& j, int layer) : c(ModelConfig::from_json(j)) {
    p = add_engram(table, "e", c, layer);
    P.resize(table.total());
    G.assign(table.total(), 0.0);
    Rng rng(9);
    for (const auto& e : table.entries()) {
      const bool norm = e.name.find("norm") != std::string::npos;
      for (size_t i = 0; i < e.numel; ++i) {
        P[e.offset + i] = norm ? 1 + 0.3 * rng.normal() : 0.5 * rng.normal();
      }
    }
  }
  int width() const { return c.residual_width(); }
  // X + Engram(X) of the packed sequences.
  std::vector<double> run(const std::vector<std::vector<int32_t>>& seqs, std::vector<double> X,
                          EngramActs<double>& a, SeqLayout& layout) const {
    const Batch b = Batch::from_sequences(seqs);
    layout = testing::layout_of(b.seq_starts);
    const auto ids = engram_ngram_ids(b.tokens.data(), layout, c.engram->max_ngram_size);
    engram_forward(c, p, P.data(), ids.data(), X.data(), a, layout, EngramState{}, false);
    return X;
  }
};

std::vector<double> random_streams(int64_t n, int width, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> x(n * width);
  for (double& v : x) v = rng.normal();
  return x;
}

// A token reaches its own n-grams (N - 1 tokens on) and, through them, the conv taps
// ((kernel - 1) * N tokens on): nothing outside [s, s + N - 1 + (kernel - 1) N] may move.
TEST(Engram, ChangingATokenMovesOnlyItsNgramAndConvReach) {
  for (const Json& j : {testing::tiny_llama_engram_json(), testing::tiny_v3_mhc_engram_json()}) {
    Layer L(j, j["engram"]["layer_ids"][0]);
    const int N = L.c.engram->max_ngram_size, K = L.c.engram->kernel_size;
    const int64_t T = 24, reach = (N - 1) + int64_t{K - 1} * N;
    std::vector<int32_t> seq(T);
    Rng rng(4);
    for (auto& v : seq) v = static_cast<int32_t>(rng.uniform() * L.c.vocab_size);
    const auto X = random_streams(T, L.width(), 8);
    EngramActs<double> a;
    SeqLayout lay;
    const auto base = L.run({seq}, X, a, lay);
    for (int64_t s : {0, 5, 11}) {
      auto changed = seq;
      changed[s] = (changed[s] + 1) % L.c.vocab_size;
      const auto out = L.run({changed}, X, a, lay);
      for (int64_t t = 0; t < T; ++t) {
        double diff = 0;
        for (int i = 0; i < L.width(); ++i) {
          diff = std::max(diff, std::abs(out[t * L.width() + i] - base[t * L.width() + i]));
        }
        if (t < s || t > s + reach) {
          EXPECT_EQ(diff, 0.0) << "token " << s << " moved position " << t;
        } else if (t <= s + N - 1) {
          EXPECT_GT(diff, 0.0) << "token " << s << " did not reach its n-gram at " << t;
        }
      }
    }
  }
}

TEST(Engram, ZeroValueProjectionAddsNothing) {
  Layer L(testing::tiny_v3_mhc_engram_json(), 1);
  std::fill_n(L.P.begin() + L.p.value_w, L.c.hidden_size * L.c.engram->width(), 0.0);
  std::fill_n(L.P.begin() + L.p.value_b, L.c.hidden_size, 0.0);
  const auto X = random_streams(7, L.width(), 3);
  EngramActs<double> a;
  SeqLayout lay;
  EXPECT_EQ(L.run({{1, 2, 3, 4}, {5, 6, 7}}, X, a, lay), X);
}

// Central differences in double through the layer: every tensor, the looked-up table rows
// all checked (and an untouched row's gradient is exactly zero).
TEST(Engram, LayerGradientsMatchFiniteDifferences) {
  for (const Json& j : {testing::tiny_llama_engram_json(), testing::tiny_v3_mhc_engram_json()}) {
    Layer L(j, j["engram"]["layer_ids"][0]);
    const std::vector<std::vector<int32_t>> seqs = {{1, 5, 9, 2, 7, 3, 3, 1, 8, 0}, {4, 4}, {6}};
    auto X = random_streams(13, L.width(), 5);
    const auto coef = random_streams(13, L.width(), 6);
    EngramActs<double> a;
    SeqLayout lay;
    auto f = [&] {
      const auto out = L.run(seqs, X, a, lay);
      double s = 0;
      for (size_t i = 0; i < out.size(); ++i) s += coef[i] * out[i];
      return s;
    };
    f();
    std::vector<double> dX = coef;
    std::fill(L.G.begin(), L.G.end(), 0.0);
    engram_backward(L.c, L.p, L.P.data(), L.G.data(), a, lay, dX.data());
    auto check = [&](double* x, double g, const std::string& what) {
      const double orig = *x, eps = 1e-6;
      *x = orig + eps;
      const double fp = f();
      *x = orig - eps;
      const double fm = f();
      *x = orig;
      const double fd = (fp - fm) / (2 * eps);
      EXPECT_NEAR(g, fd, 1e-6 * (1 + std::abs(fd))) << what;
    };
    for (const auto& e : L.table.entries()) {
      if (e.name.find("embedding") != std::string::npos) continue;
      for (size_t i = 0; i < e.numel; i += std::max<size_t>(1, e.numel / 8)) {
        check(&L.P[e.offset + i], L.G[e.offset + i], e.name);
      }
    }
    const int hd = L.c.engram->head_dim();
    std::vector<bool> hit(L.p.hash->rows, false);
    for (int64_t r : a.rows) hit[r] = true;
    for (int64_t r = 0; r < L.p.hash->rows; ++r) {
      for (int i = 0; i < hd; ++i) {
        const size_t k = L.p.table + r * hd + i;
        if (hit[r]) {
          check(&L.P[k], L.G[k], "table row " + std::to_string(r));
        } else {
          EXPECT_EQ(L.G[k], 0.0) << "untouched row " << r;
        }
      }
    }
    for (size_t i = 0; i < X.size(); i += 3) check(&X[i], dX[i], "input streams");
  }
}

TEST(Engram, BadConfigNamesTheKey) {
  auto error_of = [](const Json& patch) {
    Json j = testing::tiny_llama_engram_json();
    for (const auto& [k, v] : patch.items()) j["engram"][k] = v;
    try {
      ModelConfig::from_json(j);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of({{"max_ngram_size", 1}}).find("engram.max_ngram_size"), std::string::npos);
  EXPECT_NE(error_of({{"n_embed_per_ngram", 7}}).find("engram.n_embed_per_ngram"),
            std::string::npos);
  EXPECT_NE(error_of({{"layer_ids", {5}}}).find("engram.layer_ids"), std::string::npos);
  EXPECT_NE(error_of({{"engram_vocab_size", {11}}}).find("engram.engram_vocab_size"),
            std::string::npos);
  EXPECT_NE(error_of({{"kernel_size", 0}}).find("engram.kernel_size"), std::string::npos);
  EXPECT_NE(error_of({{"pad_id", 99}}).find("engram.pad_id"), std::string::npos);
  EXPECT_NE(error_of({{"seed", -1}}).find("engram.seed"), std::string::npos);
  EXPECT_NE(error_of({{"tables", 1}}).find("engram.tables"), std::string::npos);
  EXPECT_EQ(error_of({{"seed", 5}}), "no error");
  // The config round-trips.
  const ModelConfig c = ModelConfig::from_json(testing::tiny_llama_engram_json());
  const ModelConfig back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.engram->layer_ids, c.engram->layer_ids);
  EXPECT_EQ(back.engram->engram_vocab_size, c.engram->engram_vocab_size);
}

// One AdamW step (with weight decay) after one backward: the table moves only in the rows the
// batch looked up; with engram.freeze_table it does not move at all while the rest trains.
TEST(Engram, OptimizerUpdatesOnlyTouchedTableRowsOrNoneWhenFrozen) {
  for (bool freeze : {false, true}) {
    Json j = testing::tiny_llama_engram_json();
    j["engram"]["freeze_table"] = freeze;
    Model<double> m(ModelConfig::from_json(j));
    m.init_random(3, 0.3);
    const Batch batch = Batch::from_sequences({{1, 5, 9, 2}, {7, 3}});
    Activations<double> acts;
    m.forward(batch, ForwardOptions{}, acts);
    std::vector<double> coef(batch.n_tokens(), 1.0);
    m.zero_grad();
    m.backward(acts, coef.data(), nullptr, BalanceWeights{}, nullptr, nullptr);
    const std::vector<double> before = m.params();
    OptimizerConfig oc;
    oc.weight_decay = 0.1;
    Optimizer<double> opt(m.table(), oc);
    opt.step(m.params().data(), m.grads().data(), 1e-2);
    const ParamEntry& table =
        m.table().at("model.layers.0.engram.multi_head_embedding.embedding.weight");
    EXPECT_EQ(table.trainable, !freeze);
    const int hd = m.config().engram->head_dim();
    std::vector<bool> hit(table.shape[0], false);
    for (int64_t r : acts.layers[0].engram.rows) hit[r] = true;
    int moved = 0;
    for (int64_t r = 0; r < table.shape[0]; ++r) {
      const size_t k = table.offset + r * hd;
      const bool same =
          std::equal(before.begin() + k, before.begin() + k + hd, m.params().begin() + k);
      if (!hit[r] || freeze) {
        EXPECT_TRUE(same) << "row " << r << (freeze ? " of a frozen table" : " not looked up");
      }
      moved += !same;
    }
    EXPECT_EQ(moved > 0, !freeze);
    const size_t v = m.table().at("model.layers.0.engram.value_proj.weight").offset;
    EXPECT_NE(before[v], m.params()[v]) << "the rest of Engram trains";
  }
}

// engram_compression.json is written with the checkpoint and read back with its config: the
// reloaded model hashes the same canonical ids (same logprobs); without the file (identity) it
// hashes other rows.
TEST(Engram, CompressionTableTravelsWithTheCheckpoint) {
  ModelConfig c = ModelConfig::from_json(testing::tiny_llama_engram_json());
  auto table = std::make_shared<std::vector<int32_t>>();
  for (int v = 0; v < c.vocab_size; ++v) table->push_back(v / 3);  // many to one
  c.engram->compression = table;
  Model<float> m(c);
  m.init_random(5, 0.3);
  const std::string dir = testing::temp_dir("engram_compression");
  save_model(m, dir);
  ASSERT_TRUE(std::filesystem::exists(dir + "/" + kEngramCompressionFile));
  auto back = load_model<float>(dir);
  ASSERT_TRUE(back->config().engram->compression != nullptr);
  EXPECT_EQ(*back->config().engram->compression, *table);
  const Batch batch = Batch::from_sequences({{1, 5, 9, 2, 7, 3, 3, 1}});
  Activations<float> a, b;
  m.forward(batch, ForwardOptions{}, a);
  back->forward(batch, ForwardOptions{}, b);
  auto scored = [](const Activations<float>& x) {  // the last token has no target (NaN)
    return std::vector<float>(x.logprob.begin(), x.logprob.end() - 1);
  };
  EXPECT_EQ(scored(a), scored(b));
  std::filesystem::remove(dir + "/" + kEngramCompressionFile);
  auto identity = load_model<float>(dir);
  identity->forward(batch, ForwardOptions{}, b);
  EXPECT_NE(scored(a), scored(b));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace aha::policy
