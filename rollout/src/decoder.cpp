// Prefill and batched one-token decode over per-sequence caches: the model's blocks run with a
// prefill pass (cache rows written) or a decode pass (attention over the caches).
#include "aha/rollout/decoder.h"

#include <algorithm>
#include <atomic>
#include <map>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/core/threading.h"
#include "aha/policy/mtp.h"

namespace aha::rollout {

using policy::Buf;
using policy::ModelConfig;

namespace {
// Rows per prefill pass: enough to fill the weight products, few enough that a pass's buffers
// stay small (1,024 rows of `small` are about 20 MB in all).
constexpr int64_t kPrefillRows = 1024;
// Rows per thread below which a prefill stays one group over all threads (prefill_lanes): at 256
// rows a thread an fp32 prefill of 8 prompts of 64 tokens ran 1.17x slower in groups (bf16 the
// same), at 512 and more both ran as fast or faster (1.06-1.1x at 64 prompts of 256).
constexpr int64_t kMinLaneRows = 512;
}  // namespace

struct Decoder::KeptActs {
  std::atomic<bool> busy{false};
  policy::LayerActs<float> acts;
};

class Decoder::BorrowedActs {
 public:
  BorrowedActs(KeptActs& kept, bool keep) {
    bool expected = false;
    if (keep && kept.busy.compare_exchange_strong(expected, true)) owner_ = &kept;
  }
  ~BorrowedActs() {
    if (owner_ != nullptr) owner_->busy.store(false);
  }
  BorrowedActs(const BorrowedActs&) = delete;
  BorrowedActs& operator=(const BorrowedActs&) = delete;
  policy::LayerActs<float>& get() { return owner_ != nullptr ? owner_->acts : own_; }

 private:
  KeptActs* owner_ = nullptr;
  policy::LayerActs<float> own_;
};

Decoder::Decoder(const policy::Model<float>& model, bool absorbed)
    // An adapter on kv_b_proj would have to be absorbed too; the naive path applies it as is.
    : model_(model),
      absorbed_(absorbed && !model.config().lora.targets("self_attn.kv_b_proj")),
      precision_(matmul_precision_setting()),
      kept_(std::make_unique<KeptActs>()) {
  for (const policy::LayerP& lp : model.layers()) {
    cache_width_.push_back(lp.attn->cache_width());
    full_kv_width_ += lp.attn->full_kv_width();
  }
}

Decoder::~Decoder() = default;

void Decoder::check_precision() const {
  if (matmul_precision_setting() != precision_) {
    fail("the matmul precision changed from ", matmul_precision_name(precision_), " to ",
         matmul_precision_name(matmul_precision_setting()),
         " after the decoder was made: its caches are laid out for the first");
  }
}

int64_t Decoder::cache_bytes_per_token() const {
  int64_t floats = 0;
  for (int64_t w : cache_width_) floats += w;
  return floats * int64_t{sizeof(float)};
}

void Decoder::reserve(SeqCache& cache, int64_t tokens) const {
  if (cache.rows.size() < cache_width_.size()) cache.rows.resize(cache_width_.size());
  for (size_t l = 0; l < cache_width_.size(); ++l) cache.rows[l].reserve(tokens * cache_width_[l]);
}

int64_t Decoder::full_kv_bytes_per_token() const {
  return full_kv_width_ * int64_t{sizeof(float)};
}

void Decoder::embed(const int32_t* tokens, int64_t n, Buf<float>& x) const {
  const ModelConfig& c = model_.config();
  const int d = c.hidden_size;
  const float* E = model_.params().data() + model_.embed_offset();
  x.resize(n * c.residual_width());
  for (int64_t t = 0; t < n; ++t) std::copy_n(E + int64_t{tokens[t]} * d, d, x.data() + t * d);
  if (c.has_hc()) {
    Buf<float> e(x.begin(), x.begin() + n * d);
    policy::hc_expand_embedding(e.data(), x.data(), n, c.hc_mult, d);
  }
}

void Decoder::final_hidden(const float* x, int64_t n, float* h) const {
  const ModelConfig& c = model_.config();
  const float* P = model_.params().data();
  Buf<float> rstd(n), collapsed;
  if (c.has_hc()) {  // the streams' final collapse, batch-invariant like the rest of decode
    collapsed.resize(n * c.hidden_size);
    policy::HcActs<float> a;
    policy::hc_collapse(c, model_.hc_head(), P, x, collapsed.data(), a, n, false, true);
    x = collapsed.data();
  }
  policy::rmsnorm_forward(x, P + model_.final_norm().w, h, rstd.data(), n, c.hidden_size,
                          c.rms_norm_eps);
}

void Decoder::head(const float* x, int64_t n, std::vector<float>& logits) const {
  Buf<float> h(n * model_.config().hidden_size);
  final_hidden(x, n, h.data());
  head_of_hidden(h.data(), n, logits);
}

void Decoder::head_of_hidden(const float* h, int64_t n, std::vector<float>& logits) const {
  const ModelConfig& c = model_.config();
  logits.resize(n * c.vocab_size);
  gemm_xwt_rowstable(h, model_.params().data() + model_.lm_head_offset(),
                     static_cast<const float*>(nullptr), logits.data(), n, c.hidden_size,
                     c.vocab_size);
}

std::vector<int32_t> Decoder::engram_context(const std::vector<int32_t>& tokens,
                                              const std::vector<SeqCache*>& caches) const {
  const ModelConfig& c = model_.config();
  if (!c.engram) return {};
  const int N = c.engram->max_ngram_size;
  const int64_t B = static_cast<int64_t>(tokens.size());
  std::vector<int32_t> ids(B * N, -1);
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = caches[b]->recent;
    ids[b * N] = tokens[b];
    for (int j = 1; j < N && j <= static_cast<int>(r.size()); ++j) ids[b * N + j] = r[r.size() - j];
  }
  return ids;
}

void Decoder::prefill(const std::vector<int32_t>& prompt, SeqCache& cache,
                      std::vector<float>& logits, Routing* routing) const {
  std::vector<Routing> routings;
  prefill({&prompt}, {&cache}, logits, routing != nullptr ? &routings : nullptr);
  if (routing != nullptr) *routing = std::move(routings[0]);
}

void Decoder::prefill(const std::vector<const std::vector<int32_t>*>& prompts,
                      const std::vector<SeqCache*>& caches, std::vector<float>& logits,
                      std::vector<Routing>* routings) const {
  const ModelConfig& c = model_.config();
  const int64_t B = static_cast<int64_t>(prompts.size());
  AHA_CHECK(caches.size() == prompts.size(), "one cache per prompt");
  if (routings != nullptr) routings->assign(B, {});
  if (B == 0 && !lockstep()) return;
  if (c.engram) {  // one prompt per pass (prefill_engram)
    std::vector<float> one;
    logits.resize(B * c.vocab_size);
    for (int64_t b = 0; b < B; ++b) {
      prefill_engram(*prompts[b], *caches[b], one, routings != nullptr ? &(*routings)[b] : nullptr);
      std::copy(one.begin(), one.end(), logits.begin() + b * c.vocab_size);
    }
    return;
  }
  const std::vector<int64_t> cut = prefill_lanes(prompts);
  if (cut.size() <= 2) return prefill_group(prompts, caches, 0, B, logits, routings);
  // One group of whole prompts per thread, each a task of its own: a thread runs its group's
  // passes without waiting for the other core at every product, norm and attention (one pass
  // over all rows forked and joined the two threads some fifty times a layer); a thread whose
  // group ends first takes the other's product tiles. Each row's bits are those of one pass over
  // all of them (row-stable kernels; a prompt stays in one group).
  std::vector<std::vector<float>> part(cut.size() - 1);
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, part.size(), 1),
      [&](const tbb::blocked_range<size_t>& r) {
        for (size_t i = r.begin(); i < r.end(); ++i) {
          prefill_group(prompts, caches, cut[i], cut[i + 1], part[i], routings);
        }
      },
      tbb::simple_partitioner());
  logits.clear();
  for (const std::vector<float>& p : part) logits.insert(logits.end(), p.begin(), p.end());
}

std::vector<int64_t> Decoder::prefill_lanes(
    const std::vector<const std::vector<int32_t>*>& prompts) const {
  const int64_t B = static_cast<int64_t>(prompts.size());
  int64_t n = 0;
  for (const std::vector<int32_t>* p : prompts) n += static_cast<int64_t>(p->size());
  const int64_t lanes = lockstep() ? 1 : std::min<int64_t>(max_threads(), n / kMinLaneRows);
  std::vector<int64_t> cut = {0};
  for (int64_t b = 0, rows = 0, k = 1; b < B && k < lanes; ++b) {
    rows += static_cast<int64_t>(prompts[b]->size());
    if (rows >= n * k / lanes && b + 1 < B) {
      cut.push_back(b + 1);
      ++k;
    }
  }
  cut.push_back(B);
  return cut;
}

void Decoder::prefill_group(const std::vector<const std::vector<int32_t>*>& prompts,
                            const std::vector<SeqCache*>& caches, int64_t b0, int64_t b1,
                            std::vector<float>& logits, std::vector<Routing>* routings) const {
  const ModelConfig& c = model_.config();
  // Every prompt row as a decode row of its own (a cache listed once per row takes consecutive
  // positions): the decode path's kernels are batch-invariant throughout, attention included.
  std::vector<int32_t> tokens;
  std::vector<SeqCache*> rows;
  std::vector<int64_t> last;
  for (int64_t b = b0; b < b1; ++b) {
    const std::vector<int32_t>& p = *prompts[b];
    AHA_CHECK(!p.empty(), "empty prompt");
    SeqCache& sc = *caches[b];
    sc.rows.assign(c.num_hidden_layers, {});
    sc.len = 0;
    if (sc.draft.on) sc.draft = {true, {}, 0, {}};
    tokens.insert(tokens.end(), p.begin(), p.end());
    rows.insert(rows.end(), p.size(), &sc);
    last.push_back(static_cast<int64_t>(tokens.size()) - 1);
  }
  Routing all;
  prefill_rows(tokens, rows, last, logits, routings != nullptr ? &all : nullptr);
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (b0 == b1 || routings == nullptr) return;
  for (const std::vector<int32_t>& layer : all) {  // [n * width] into each prompt's rows
    const int64_t width = static_cast<int64_t>(layer.size()) / n;
    for (int64_t b = b0, start = 0; b < b1; start = last[b - b0] + 1, ++b) {
      (*routings)[b].emplace_back(layer.begin() + start * width,
                                  layer.begin() + (last[b - b0] + 1) * width);
    }
  }
}

// The rows go through in passes of at most kPrefillRows, in order: each row's bits are those of
// one pass over all of them (its cache's earlier rows are written by then), while a pass's
// buffers stay in the caches and under glibc's mmap threshold (one pass over 64 prompts of 256
// tokens spent a sixth of its time in the page faults of fresh 75 MB buffers).
void Decoder::prefill_rows(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& rows,
                           const std::vector<int64_t>& last, std::vector<float>& logits,
                           Routing* all) const {
  const int64_t n = static_cast<int64_t>(tokens.size()), B = static_cast<int64_t>(last.size());
  int64_t passes = (n + kPrefillRows - 1) / kPrefillRows;
  if (lockstep()) {  // every rank makes as many passes as the rank with the most rows
    double most = static_cast<double>(passes);
    dist::allreduce_max(&most, 1, "prefill passes");
    passes = static_cast<int64_t>(most);
  }
  logits.clear();
  std::vector<float> part_logits;
  for (int64_t k = 0, next_last = 0; k < passes; ++k) {
    const int64_t lo = std::min(n, k * kPrefillRows), hi = std::min(n, lo + kPrefillRows);
    const std::vector<int32_t> part_tokens(tokens.begin() + lo, tokens.begin() + hi);
    const std::vector<SeqCache*> part_rows(rows.begin() + lo, rows.begin() + hi);
    Routing part;
    Buf<float> x;
    forward_rows(part_tokens, part_rows, all != nullptr ? &part : nullptr, x, true);
    if (lo == hi) continue;  // an expert-parallel rank that only served the others' rows
    for (size_t l = 0; l < part.size(); ++l) {
      if (all->size() <= l) all->emplace_back();
      (*all)[l].insert((*all)[l].end(), part[l].begin(), part[l].end());
    }
    std::vector<int64_t> out;  // the prompts' last rows in this pass
    for (; next_last < B && last[next_last] < hi; ++next_last) out.push_back(last[next_last] - lo);
    rows_out(x, part_rows, out, part_logits);
    logits.insert(logits.end(), part_logits.begin(), part_logits.end());
  }
}

// Engram's n-grams and short convolution need the prompt's earlier tokens in the pass: a pass
// over the one prompt's rows with the training layout (batch-invariant GEMMs; always alone).
void Decoder::prefill_engram(const std::vector<int32_t>& prompt, SeqCache& cache,
                             std::vector<float>& logits, Routing* routing) const {
  check_precision();
  const ModelConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(prompt.size());
  AHA_CHECK(n > 0, "empty prompt");
  policy::SeqLayout layout;
  layout.seq_starts = {0, n};
  for (int64_t t = 0; t < n; ++t) layout.positions.push_back(static_cast<int32_t>(t));
  cache.rows.assign(c.num_hidden_layers, {});
  cache.len = n;
  if (cache.draft.on) cache.draft = {true, {}, 0, {}};
  Buf<float> x;
  embed(prompt.data(), n, x);
  const int N = c.engram->max_ngram_size;
  const std::vector<int32_t> ngram_ids = policy::engram_ngram_ids(prompt.data(), layout, N);
  cache.recent.assign(prompt.end() - std::min<int64_t>(n, N - 1), prompt.end());
  cache.engram_history.assign(c.num_hidden_layers, {});
  if (routing != nullptr) routing->clear();
  for (int l = 0; l < c.num_hidden_layers; ++l) prefill_layer(l, layout, cache, ngram_ids, x, routing);
  rows_out(x, std::vector<SeqCache*>(n, &cache), {n - 1}, logits);
}

// One layer of the Engram prefill, with the batch-invariant kernels; appends the layer's
// selections and routing (in Model::replay_widths() order).
void Decoder::prefill_layer(int l, const policy::SeqLayout& layout, SeqCache& cache,
                            const std::vector<int32_t>& ngram_ids, Buf<float>& x,
                            Routing* routing) const {
  const ModelConfig& c = model_.config();
  const int64_t n = layout.n_tokens();
  cache.rows[l].resize(n * cache_width_[l]);
  policy::BlockPass pass;
  pass.layout = &layout;
  pass.keep_inputs = false;
  pass.rowstable = true;
  pass.cache_rows = cache.rows[l].data();
  pass.ngram_ids = ngram_ids.data();
  if (model_.layers()[l].engram.on()) {
    cache.engram_history[l].resize(policy::engram_history_rows(c) * c.residual_width());
    pass.engram.history_out = cache.engram_history[l].data();
  }
  policy::LayerActs<float> la;
  policy::block_forward(c, model_.layers()[l], model_.params().data(), x.data(), la, pass);
  if (routing == nullptr) return;
  const policy::Attention& attn = *model_.layers()[l].attn;
  if (const int64_t sw = attn.selection_width(); sw > 0) {
    std::vector<int32_t> sel(n * sw);
    attn.selection_rows(la.attn, n, sel.data());
    routing->push_back(std::move(sel));
  }
  if (model_.layers()[l].moe) routing->push_back(la.moe.topk);
}

void Decoder::decode(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& caches,
                     std::vector<float>& logits, Routing* routing) const {
  Buf<float> x;
  forward_rows(tokens, caches, routing, x);
  if (tokens.empty()) return;  // an expert-parallel rank that only served the others' rows
  std::vector<int64_t> all(tokens.size());
  for (size_t b = 0; b < all.size(); ++b) all[b] = static_cast<int64_t>(b);
  rows_out(x, caches, all, logits);
}

void Decoder::forward_rows(const std::vector<int32_t>& tokens, const std::vector<SeqCache*>& caches,
                           Routing* routing, Buf<float>& x, bool prefill) const {
  check_precision();
  const ModelConfig& c = model_.config();
  const int64_t B = static_cast<int64_t>(tokens.size());
  AHA_CHECK(caches.size() == tokens.size(), "one cache per token");
  std::vector<int32_t> positions(B);
  std::map<const SeqCache*, int32_t> taken;  // earlier rows of the same sequence this step
  for (int64_t b = 0; b < B; ++b) {
    const int32_t k = taken[caches[b]]++;
    AHA_CHECK(k == 0 || !c.engram, "Engram decodes one token per sequence and step");
    positions[b] = static_cast<int32_t>(caches[b]->len) + k;
    if (positions[b] >= model_.rope().max_pos()) fail("sequence exceeds the model's context");
  }
  if (routing != nullptr) routing->clear();
  const policy::ExpertParallel* ep = nullptr;
  if (lockstep()) {
    // Every rank makes this call; a pass that no rank has rows for is skipped by all of them.
    double any = B > 0 ? 1.0 : 0.0;
    dist::allreduce_max(&any, 1, "decode rows");
    if (any == 0.0) return;
    ep = &model_.expert_parallel();
    if (B == 0) return serve_experts();
  }
  embed(tokens.data(), B, x);
  policy::SeqLayout layout;  // B one-token "sequences" for the MoE balance statistics
  for (int64_t b = 0; b <= B; ++b) layout.seq_starts.push_back(b);
  layout.positions = positions;
  // Prefill's buffers, sized by its prompts, are not kept.
  BorrowedActs borrowed(*kept_, !prefill);
  policy::LayerActs<float>& la = borrowed.get();
  policy::DecodeStep step;
  step.positions = positions.data();
  step.absorbed = absorbed_;
  step.prefill = prefill;
  step.rows.resize(B);
  const std::vector<int32_t> ngram_ids = engram_context(tokens, caches);
  std::vector<float*> history(B);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (int64_t b = 0; b < B; ++b) step.rows[b] = &caches[b]->rows[l];
    policy::BlockPass pass;
    pass.layout = &layout;
    pass.keep_inputs = false;
    pass.rowstable = true;
    pass.decode = &step;
    pass.ep = ep;
    pass.ngram_ids = ngram_ids.data();
    if (model_.layers()[l].engram.on()) {
      for (int64_t b = 0; b < B; ++b) history[b] = caches[b]->engram_history[l].data();
      pass.engram.history = history.data();
    }
    std::vector<int32_t> sel;
    const bool sparse = model_.layers()[l].attn->selection_width() > 0;
    step.selections = routing != nullptr && sparse ? &sel : nullptr;
    policy::block_forward(c, model_.layers()[l], model_.params().data(), x.data(), la, pass);
    if (routing != nullptr) {  // in Model::replay_widths() order
      if (sparse) routing->push_back(std::move(sel));
      if (model_.layers()[l].moe) routing->push_back(la.moe.topk);
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    caches[b]->len += 1;
    if (c.engram) {  // keep the last max_ngram - 1 tokens
      auto& r = caches[b]->recent;
      r.push_back(tokens[b]);
      if (static_cast<int>(r.size()) >= c.engram->max_ngram_size) r.erase(r.begin());
    }
  }
}

bool Decoder::lockstep() const {
  const policy::ModelConfig& c = model_.config();
  return c.ep.sharded && c.ep.on();
}

void Decoder::serve_experts() const {
  // As Model::forward_idle, but with the decode path's batch-invariant kernels, which the
  // ranks sending rows here use for the same experts.
  const ModelConfig& c = model_.config();
  policy::SeqLayout none;
  none.seq_starts = {0};
  policy::MoeActs<float> acts;
  for (const policy::LayerP& lp : model_.layers()) {
    if (!lp.moe) continue;
    policy::moe_forward(c, lp.moe_p, model_.params().data(), static_cast<const float*>(nullptr),
                        static_cast<float*>(nullptr), none, acts, nullptr, true,
                        &model_.expert_parallel());
  }
}

void Decoder::rows_out(const Buf<float>& x, const std::vector<SeqCache*>& caches,
                       const std::vector<int64_t>& out_rows, std::vector<float>& logits) const {
  const ModelConfig& c = model_.config();
  const int64_t B = static_cast<int64_t>(caches.size()), rw = c.residual_width();
  const int64_t m = static_cast<int64_t>(out_rows.size());
  const bool every_row = m == B;  // decode: the rows are the logits' rows already
  bool drafting = false;
  for (const SeqCache* sc : caches) drafting = drafting || sc->draft.on;
  if (!drafting) {
    if (every_row) return head(x.data(), B, logits);
    Buf<float> picked(m * rw);
    for (int64_t i = 0; i < m; ++i) std::copy_n(x.data() + out_rows[i] * rw, rw, picked.data() + i * rw);
    return head(picked.data(), m, logits);
  }
  const int d = c.hidden_size;
  Buf<float> h(B * d);  // normed once for the head and the draft module
  final_hidden(x.data(), B, h.data());
  for (int64_t b = 0; b < B; ++b) {
    auto& pending = caches[b]->draft.hidden;
    if (caches[b]->draft.on) pending.insert(pending.end(), h.begin() + b * d, h.begin() + (b + 1) * d);
  }
  if (every_row) return head_of_hidden(h.data(), B, logits);
  Buf<float> picked(m * d);
  for (int64_t i = 0; i < m; ++i) std::copy_n(h.data() + out_rows[i] * d, d, picked.data() + i * d);
  head_of_hidden(picked.data(), m, logits);
}

void Decoder::truncate(SeqCache& cache, int64_t len) const {
  AHA_CHECK(len <= cache.len && len >= cache.draft.len, "truncate past the draft module's rows");
  AHA_CHECK(!model_.config().engram, "Engram caches cannot be truncated");
  for (size_t l = 0; l < cache.rows.size(); ++l) cache.rows[l].resize(len * cache_width_[l]);
  cache.len = len;
  if (cache.draft.on) cache.draft.hidden.resize((len - cache.draft.len) * model_.config().hidden_size);
}

bool Decoder::can_draft() const { return model_.mtp() != nullptr; }

void Decoder::draft(const std::vector<SeqCache*>& caches,
                    const std::vector<std::vector<int32_t>>& tokens,
                    std::vector<float>& logits, bool prompt) const {
  const ModelConfig& c = model_.config();
  AHA_CHECK(model_.mtp() != nullptr && caches.size() == tokens.size(), "draft needs MTP");
  const policy::MtpModuleP* mtp = &model_.mtp()->modules[0];  // depth 1 drafts
  const int d = c.hidden_size;
  std::vector<int32_t> toks, positions;
  Buf<float> hidden;
  policy::DecodeStep step;
  step.absorbed = absorbed_;
  step.prefill = prompt;
  std::vector<int64_t> last(caches.size(), -1);  // each cache's last row
  for (size_t b = 0; b < caches.size(); ++b) {
    SeqCache::Draft& dc = caches[b]->draft;
    const int64_t k = static_cast<int64_t>(tokens[b].size());
    AHA_CHECK(dc.on && int64_t(dc.hidden.size()) >= k * d, "more draft rows than pending hidden");
    for (int64_t i = 0; i < k; ++i) {
      toks.push_back(tokens[b][i]);
      positions.push_back(static_cast<int32_t>(dc.len + i));
      step.rows.push_back(&dc.rows);
    }
    hidden.insert(hidden.end(), dc.hidden.begin(), dc.hidden.begin() + k * d);
    if (k > 0) last[b] = static_cast<int64_t>(toks.size()) - 1;
  }
  const int64_t n = static_cast<int64_t>(toks.size());
  if (n == 0) return;
  step.positions = positions.data();
  const float* P = model_.params().data();
  Buf<float> x(n * d), h(n * d), rstd(n);
  policy::mtp_decode(c, *mtp, P, toks.data(), hidden.data(), n, step, x.data());
  policy::rmsnorm_forward(x.data(), P + mtp->head_norm.w, h.data(), rstd.data(), n, d,
                          c.rms_norm_eps);
  Buf<float> hl;  // the last rows, one GEMM for all caches
  for (size_t b = 0; b < caches.size(); ++b) {
    SeqCache::Draft& dc = caches[b]->draft;
    const int64_t k = static_cast<int64_t>(tokens[b].size());
    dc.len += k;
    dc.hidden.erase(dc.hidden.begin(), dc.hidden.begin() + k * d);
    if (last[b] >= 0) hl.insert(hl.end(), h.begin() + last[b] * d, h.begin() + (last[b] + 1) * d);
  }
  const int64_t m = static_cast<int64_t>(hl.size()) / d;
  std::vector<float> out(m * c.vocab_size);
  gemm_xwt_rowstable(hl.data(), P + mtp->head, static_cast<const float*>(nullptr), out.data(), m,
                     d, c.vocab_size);
  logits.resize(caches.size() * c.vocab_size);
  for (size_t b = 0, i = 0; b < caches.size(); ++b) {
    if (last[b] < 0) continue;
    std::copy_n(out.data() + (i++) * c.vocab_size, c.vocab_size, logits.data() + b * c.vocab_size);
  }
}

}  // namespace aha::rollout
