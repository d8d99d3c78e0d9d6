// The decoder's composition: parameter table in HF names, forward and backward over the stack.
#include "aha/policy/model.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <unistd.h>

#include "aha/core/error.h"
#include "aha/core/rng.h"
#include "for_chunks.h"

namespace aha::policy {

namespace {

// An absurd config.json (a head dimension of a million) must be one error line, not minutes of
// paging towards the OOM killer: the parameters and their gradients have to fit in memory.
void check_fits_in_memory(double bytes) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return;
  const double machine = double(pages) * double(page);
  if (bytes > machine) {
    fail("[config.json] the model's parameters and gradients need ", bytes / 1e9,
         " GB, more than this machine's ", machine / 1e9,
         " GB of memory: check hidden_size, num_hidden_layers and the head and expert sizes");
  }
}

}  // namespace

Batch Batch::from_sequences(const std::vector<std::vector<int32_t>>& seqs) {
  Batch b;
  b.seq_starts.push_back(0);
  for (const auto& s : seqs) {
    b.tokens.insert(b.tokens.end(), s.begin(), s.end());
    b.seq_starts.push_back(static_cast<int64_t>(b.tokens.size()));
  }
  return b;
}

ModelLayout::ModelLayout(const ModelConfig& c) {
  const int d = c.hidden_size;
  if (c.lora.on()) {  // the adapters go after the base, which keeps its offsets
    ModelConfig base = c;
    base.lora = LoraConfig{};
    table.set_lora(&c.lora, ModelLayout(base).table.total());
  }
  rope = std::make_unique<RopeTable>(c, std::min(c.max_position_embeddings, kMaxRopePositions));
  embed = table.add("model.embed_tokens.weight", {c.vocab_size, d});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    layer_begin.push_back(table.total());
    layers.push_back(add_block(table, c, *rope, l));
  }
  layer_begin.push_back(table.total());
  final_norm = add_norm(table, "model.norm.weight", d);
  if (c.has_hc()) hc_head = add_hc_head(table, c);
  lm_head = c.tie_word_embeddings ? embed : table.add("lm_head.weight", {c.vocab_size, d});
  if (c.num_nextn_predict_layers > 0) mtp = add_mtp(table, c, *rope);
  table.set_lora(nullptr, 0);  // c may not outlive the table
}

template <typename T>
Model<T>::Model(const ModelConfig& c) : c_(c) {
  // The layout refers to c_ (the attention kinds keep a reference), so it is built from it.
  ModelLayout layout(c_);
  table_ = std::move(layout.table);
  rope_ = std::move(layout.rope);
  embed_ = layout.embed;
  lm_head_ = layout.lm_head;
  final_norm_ = layout.final_norm;
  hc_head_ = layout.hc_head;
  mtp_ = std::move(layout.mtp);
  layers_ = std::move(layout.layers);
  layer_begin_ = std::move(layout.layer_begin);
  check_fits_in_memory(2.0 * double(table_.total()) * sizeof(T));
  params_.assign(table_.total(), T(0));
  if (c_.ep.on()) set_expert_parallel(c_.ep);
}

template <typename T>
int64_t Model<T>::n_params() const {
  int64_t n = 0;
  for (const auto& e : table_.entries()) n += e.trainable ? static_cast<int64_t>(e.numel) : 0;
  return n;
}

template <typename T>
void Model<T>::init_random(uint64_t seed, double std) {
  const auto& entries = table_.entries();
  // A tensor's stream is its index in the whole model, so sharded experts start as on one rank.
  std::vector<uint64_t> stream(entries.size());
  std::iota(stream.begin(), stream.end(), uint64_t{0});
  if (c_.ep.sharded) {
    ModelConfig whole = c_;
    whole.ep = ExpertParallel{};
    const ModelLayout full(whole);
    const ParamEntry* first = full.table.entries().data();
    for (size_t i = 0; i < entries.size(); ++i) {
      stream[i] = static_cast<uint64_t>(&full.table.at(entries[i].name) - first);
    }
  }
  tbb::parallel_for(size_t{0}, entries.size(), [&](size_t i) {
    const ParamEntry& e = entries[i];
    T* p = params_.data() + e.offset;
    // DSA's indexer k_norm is a LayerNorm: its bias starts at 0.
    const bool is_norm = e.name.find("norm") != std::string::npos && !e.name.ends_with(".bias");
    const bool is_vector = e.shape.size() == 1;
    // Hyper-connection scales start at 1 (DeepSeek-V4's init), their biases at 0.
    const bool is_hc_scale = e.name.ends_with("hc.scale") || e.name.ends_with("hc_scale");
    if (is_norm || is_hc_scale) {
      std::fill(p, p + e.numel, T(1));
    } else if (is_vector) {  // biases and the routing bias
      std::fill(p, p + e.numel, T(0));
    } else {
      Rng rng(seed, stream[i]);  // one stream per tensor: init does not depend on scheduling
      for (size_t j = 0; j < e.numel; ++j) p[j] = static_cast<T>(rng.normal() * std);
    }
  });
  if (mtp_) {  // DeepSeek's MTP module starts with copies of the embedding and the LM head
    const size_t n = size_t(c_.vocab_size) * c_.hidden_size;
    for (const MtpModuleP& k : mtp_->modules) {
      std::copy_n(params_.data() + embed_, n, params_.data() + k.embed);
      std::copy_n(params_.data() + lm_head_, n, params_.data() + k.head);
    }
  }
}

template <typename T>
void Model<T>::init_adapters(uint64_t seed) {
  const auto& entries = table_.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    const ParamEntry& e = entries[i];
    if (!e.adapter) continue;
    T* p = params_.data() + e.offset;
    if (e.name.ends_with(".lora_B.weight")) {
      std::fill(p, p + e.numel, T(0));
      continue;
    }
    // PEFT's kaiming_uniform_(a = sqrt(5)) on [rank, n_in]: bound = 1 / sqrt(n_in).
    const double bound = 1.0 / std::sqrt(double(e.shape[1]));
    Rng rng(seed, i);
    for (size_t j = 0; j < e.numel; ++j) p[j] = static_cast<T>((2 * rng.uniform() - 1) * bound);
  }
}

template <typename T>
void Model<T>::zero_grad() {
  // LoRA: the frozen base's gradients are never read (backward skips its weight GEMMs).
  const size_t from = adapter_begin() < table_.total() ? adapter_begin() : 0;
  // On every core: one thread's memset of `small`'s 46 MB was 1-2% of a training step.
  std::vector<T>& g = grads();
  fill_zero(g.data() + from, static_cast<int64_t>(g.size() - from));
}

namespace {

// Positions restart at each sequence; the last token of a sequence predicts nothing (-1).
template <typename T>
void lay_out(const Batch& batch, int vocab, int64_t max_pos, Activations<T>& acts) {
  const int64_t n = batch.n_tokens();
  AHA_CHECK(!batch.seq_starts.empty() && batch.seq_starts.front() == 0 &&
                batch.seq_starts.back() == n,
            "seq_starts must start at 0 and end at n_tokens");
  acts.layout.seq_starts = batch.seq_starts;
  acts.layout.positions.resize(n);
  acts.targets.assign(n, -1);
  for (int64_t s = 0; s + 1 < static_cast<int64_t>(batch.seq_starts.size()); ++s) {
    int64_t t0 = batch.seq_starts[s], t1 = batch.seq_starts[s + 1];
    AHA_CHECK(t1 >= t0, "seq_starts must be non-decreasing");
    if (t1 - t0 > max_pos) {
      fail("sequence of ", t1 - t0, " tokens exceeds the model's context of ", max_pos);
    }
    for (int64_t t = t0; t < t1; ++t) {
      acts.layout.positions[t] = static_cast<int32_t>(t - t0);
      if (t + 1 < t1) acts.targets[t] = batch.tokens[t + 1];
    }
  }
  for (int32_t tok : batch.tokens) {
    if (tok < 0 || tok >= vocab) fail("token id ", tok, " outside the vocabulary [0, ", vocab, ")");
  }
  acts.tokens = batch.tokens;
}

}  // namespace

template <typename T>
void Model<T>::forward(const Batch& batch, const ForwardOptions& opts,
                       Activations<T>& acts) const {
  const int64_t n = batch.n_tokens();
  const int d = c_.hidden_size;
  lay_out(batch, c_.vocab_size, rope_->max_pos(), acts);
  acts.temperature = opts.temperature;
  if (opts.kept_ids != nullptr) {
    AHA_CHECK(static_cast<int64_t>(opts.kept_ids->size()) == n, "kept_ids needs one entry per token");
    acts.kept = *opts.kept_ids;
  } else {
    acts.kept.clear();
  }
  Buf<T> x(n * c_.residual_width());
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(params_.data() + embed_ + int64_t{batch.tokens[t]} * d, d, x.data() + t * d);
  }
  if (c_.has_hc()) {
    Buf<T> e(x.begin(), x.begin() + n * d);
    hc_expand_embedding(e.data(), x.data(), n, c_.hc_mult, d);
  }
  // Engram layers hash each token's n-gram; the ids are the same for every layer.
  const std::vector<int32_t> ngram_ids =
      c_.engram ? engram_ngram_ids(batch.tokens.data(), acts.layout, c_.engram->max_ngram_size)
                : std::vector<int32_t>{};
  acts.layers.resize(opts.keep_activations ? c_.num_hidden_layers : 1);
  acts.aux_loss = acts.device_loss = acts.comm_loss = 0;
  int replay_index = 0;
  for (int l = 0; l < c_.num_hidden_layers; ++l) {
    LayerActs<T>& la = acts.layers[opts.keep_activations ? l : 0];
    BlockPass pass;
    pass.layout = &acts.layout;
    pass.ngram_ids = ngram_ids.data();
    // The replayed ids of this layer's parts, in replay_widths() order.
    auto next_replay = [&](int64_t width) -> const int32_t* {
      if (opts.replay_topk == nullptr) return nullptr;
      AHA_CHECK(replay_index < static_cast<int>(opts.replay_topk->size()), "replay_topk has ",
                opts.replay_topk->size(), " layers");
      const auto& r = (*opts.replay_topk)[replay_index++];
      AHA_CHECK(static_cast<int64_t>(r.size()) == n * width, "replay_topk layer size ", r.size());
      return r.data();
    };
    if (const int64_t w = layers_[l].attn->selection_width(); w > 0) {
      pass.forced_selection = next_replay(w);
    }
    if (layers_[l].moe) pass.forced_topk = next_replay(c_.num_experts_per_tok);
    pass.ep = opts.expert_parallel ? &ep_ : nullptr;
    block_forward(c_, layers_[l], params_.data(), x.data(), la, pass);
    if (layers_[l].moe) {
      acts.aux_loss += la.moe.aux_loss;
      acts.device_loss += la.moe.device_loss;
      acts.comm_loss += la.moe.comm_loss;
    }
  }
  if (c_.has_hc()) {
    acts.x_final.resize(n * d);
    hc_collapse(c_, hc_head_, params_.data(), x.data(), acts.x_final.data(), acts.hc_head, n,
                opts.keep_activations, false);
  } else {
    acts.x_final = std::move(x);
  }
  acts.h_final.resize(n * d);
  acts.rstd_final.resize(n);
  rmsnorm_forward(acts.x_final.data(), params_.data() + final_norm_.w, acts.h_final.data(),
                  acts.rstd_final.data(), n, d, c_.rms_norm_eps);
  acts.logprob.resize(n);
  acts.lse.resize(n);
  acts.entropy.resize(opts.entropy ? n : 0);
  logprob_forward(acts.h_final.data(), params_.data() + lm_head_, acts.targets.data(),
                  acts.logprob.data(), opts.entropy ? acts.entropy.data() : nullptr,
                  acts.lse.data(), n, d, c_.vocab_size, opts.temperature,
                  acts.kept.empty() ? nullptr : &acts.kept);
}

template <typename T>
std::vector<std::pair<size_t, size_t>> Model<T>::grad_ranges() const {
  const int L = c_.num_hidden_layers;
  // LoRA: only the adapters (the tail) have gradients; they are final when backward ends.
  if (adapter_begin() < table_.total()) return {{adapter_begin(), table_.total()}};
  std::vector<std::pair<size_t, size_t>> r{{layer_begin_[L], table_.total()}};
  for (int l = L - 1; l >= 0; --l) r.emplace_back(layer_begin_[l], layer_begin_[l + 1]);
  r.emplace_back(0, layer_begin_[0]);
  return r;
}

template <typename T>
void Model<T>::backward(const Activations<T>& acts, const T* dlogprob, const T* dentropy,
                        const BalanceWeights& balance, const T* dh_final,
                        const GradsReady* ready) {
  const bool frozen = adapter_begin() < table_.total();  // LoRA: the base learns nothing
  auto report = [&](size_t b, size_t e) {
    if (ready != nullptr && e > b && !frozen) (*ready)(b, e);
  };
  const int64_t n = acts.layout.n_tokens();
  const int d = c_.hidden_size;
  AHA_CHECK(static_cast<int>(acts.layers.size()) == c_.num_hidden_layers,
            "backward needs a forward with keep_activations");
  const T* P = params_.data();
  T* G = grads().data();
  ScratchBuf<T> dh = zeros<T>(n * d);
  if (dlogprob != nullptr || dentropy != nullptr) {
    logprob_backward(dlogprob, dentropy, acts.h_final.data(), P + lm_head_, acts.targets.data(),
                     acts.lse.data(), dh.data(), frozen ? nullptr : G + lm_head_, n, d,
                     c_.vocab_size,
                     acts.temperature, acts.kept.empty() ? nullptr : &acts.kept);
  }
  if (dh_final != nullptr) {
    for (int64_t i = 0; i < n * d; ++i) dh[i] += dh_final[i];
  }
  ScratchBuf<T> dx = zeros<T>(n * c_.residual_width());
  if (c_.has_hc()) {
    Buf<T> dcollapsed(n * d, T(0));
    rmsnorm_backward(dh.data(), acts.x_final.data(), P + final_norm_.w, acts.rstd_final.data(),
                     dcollapsed.data(), G + final_norm_.w, n, d);
    hc_collapse_backward(c_, hc_head_, P, G, acts.hc_head, dcollapsed.data(),
                         static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                         dx.data(), n);
  } else {
    rmsnorm_backward(dh.data(), acts.x_final.data(), P + final_norm_.w, acts.rstd_final.data(),
                     dx.data(), G + final_norm_.w, n, d);
  }
  // With tied embeddings the LM head's gradient lives in the embedding, reported last.
  report(layer_begin_[c_.num_hidden_layers], table_.total());
  for (int l = c_.num_hidden_layers - 1; l >= 0; --l) {
    block_backward(c_, layers_[l], P, G, acts.layers[l], acts.layout, dx.data(), balance);
    report(layer_begin_[l], layer_begin_[l + 1]);
  }
  if (frozen && ready != nullptr) (*ready)(adapter_begin(), table_.total());
  // Every stream started as a copy of the embedding.
  const int streams = c_.has_hc() ? c_.hc_mult : 1;
  for (int64_t t = 0; t < n && !frozen; ++t) {
    T* row = G + embed_ + int64_t{acts.tokens[t]} * d;
    for (int p = 0; p < streams; ++p) {
      const T* g = dx.data() + (t * streams + p) * d;
      for (int i = 0; i < d; ++i) row[i] += g[i];
    }
  }
  report(0, layer_begin_[0]);
}

template <typename T>
void Model<T>::set_expert_parallel(const ExpertParallel& ep) {
  AHA_CHECK(ep.size >= 1 && ep.rank >= 0 && ep.rank < ep.size, "expert parallel rank ", ep.rank,
            " of ", ep.size);
  // The allocation follows the config's sharding, fixed at construction.
  AHA_CHECK(ep.sharded == c_.ep.sharded && (!ep.sharded || ep.rank == c_.ep.rank),
            "set_expert_parallel cannot change a sharded model's experts");
  if (ep.size > 1 && (c_.n_routed_experts == 0 || c_.n_routed_experts % ep.size != 0)) {
    fail("expert parallelism over ", ep.size, " ranks needs n_routed_experts divisible by ",
         ep.size, " (the model has ", c_.n_routed_experts, ")");
  }
  ep_ = ep;
}

template <typename T>
void Model<T>::forward_idle(Activations<T>& acts) const {
  acts = Activations<T>{};
  acts.layout.seq_starts = {0};
  acts.layers.resize(c_.num_hidden_layers);
  for (int l = 0; l < c_.num_hidden_layers; ++l) {
    if (!layers_[l].moe) continue;
    moe_forward(c_, layers_[l].moe_p, params_.data(), static_cast<const T*>(nullptr),
                static_cast<T*>(nullptr), acts.layout, acts.layers[l].moe, nullptr, false, &ep_);
  }
}

template <typename T>
void Model<T>::backward_idle(const Activations<T>& acts, const GradsReady* ready) {
  // The same report points as backward(), with no gradient of this rank's own.
  const bool frozen = adapter_begin() < table_.total();
  auto report = [&](size_t b, size_t e) {
    if (ready != nullptr && e > b && !frozen) (*ready)(b, e);
  };
  report(layer_begin_[c_.num_hidden_layers], table_.total());
  for (int l = c_.num_hidden_layers - 1; l >= 0; --l) {
    if (layers_[l].moe) {
      moe_backward(c_, layers_[l].moe_p, params_.data(), grads().data(),
                   static_cast<const T*>(nullptr), static_cast<const T*>(nullptr),
                   static_cast<T*>(nullptr), acts.layout, acts.layers[l].moe, BalanceWeights{});
    }
    report(layer_begin_[l], layer_begin_[l + 1]);
  }
  if (frozen && ready != nullptr) (*ready)(adapter_begin(), table_.total());
  report(0, layer_begin_[0]);
}

template <typename T>
std::vector<int64_t> Model<T>::replay_widths() const {
  std::vector<int64_t> w;
  for (const LayerP& lp : layers_) {
    if (lp.attn->selection_width() > 0) w.push_back(lp.attn->selection_width());
    if (lp.moe) w.push_back(c_.num_experts_per_tok);
  }
  return w;
}

template <typename T>
std::vector<std::vector<int64_t>> Model<T>::expert_loads(const Activations<T>& acts) const {
  std::vector<std::vector<int64_t>> loads;
  for (int l = 0; l < c_.num_hidden_layers; ++l) {
    if (!layers_[l].moe || l >= static_cast<int>(acts.layers.size())) continue;
    std::vector<int64_t> counts(c_.n_routed_experts, 0);
    for (int32_t e : acts.layers[l].moe.topk) ++counts[e];
    loads.push_back(std::move(counts));
  }
  return loads;
}

template <typename T>
void Model<T>::update_routing_bias(const std::vector<std::vector<int64_t>>& loads, double gamma) {
  size_t m = 0;
  for (const LayerP& lp : layers_) {
    if (!lp.moe) continue;
    AHA_CHECK(m < loads.size(), "loads for ", loads.size(), " MoE layers");
    if (lp.moe_p.e_bias == kNoParam) {
      ++m;
      continue;
    }
    const auto& load = loads[m++];
    double mean = 0;
    for (int64_t v : load) mean += static_cast<double>(v);
    mean /= static_cast<double>(load.size());
    T* bias = params_.data() + lp.moe_p.e_bias;
    for (size_t e = 0; e < load.size(); ++e) {
      double diff = mean - static_cast<double>(load[e]);
      bias[e] += static_cast<T>(gamma * ((diff > 0) - (diff < 0)));
    }
  }
}

template class Model<float>;
template class Model<double>;

}  // namespace aha::policy
