// The choice of attention kind per layer, and what the decode kernels share: the softmax and
// the split of a step's rows over the cores.
#include "aha/policy/attention.h"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "aha/core/error.h"
#include "aha/core/threading.h"
#include "attention_impl.h"
#include "vec16.h"

namespace aha::policy {

const char* attention_kind_name(AttentionKind kind) {
  switch (kind) {
    case AttentionKind::kGqa: return "gqa";
    case AttentionKind::kMla: return "mla";
    case AttentionKind::kSlidingWindow: return "sliding_window";
    case AttentionKind::kNsa: return "nsa";
    case AttentionKind::kDsa: return "dsa";
  }
  return "?";
}

namespace {

// Qwen2's sliding window: sliding_window (a positive integer) applies when use_sliding_window is
// set, to layers >= max_window_layers; a layer_types list ("sliding_attention" /
// "full_attention"), as newer HF configs write it, names the layers explicitly. 0: no window.
int64_t sliding_window_of(const ModelConfig& c, int layer) {
  const Json& j = c.raw;
  auto flag = j.find("use_sliding_window");
  const auto types = j.find("layer_types");
  const bool listed = types != j.end() && types->is_array();
  if (!listed && (flag == j.end() || !flag->is_boolean() || !flag->get<bool>())) return 0;
  if (listed) {
    if (static_cast<int>(types->size()) != c.num_hidden_layers) {
      fail("[config.json] layer_types has ", types->size(), " entries for ",
           c.num_hidden_layers, " layers");
    }
    const Json& t = (*types)[layer];
    if (!t.is_string() || (t != "sliding_attention" && t != "full_attention")) {
      fail("[config.json] layer_types[", layer, "]: expected \"sliding_attention\" or ",
           "\"full_attention\", got ", t.dump());
    }
    if (t == "full_attention") return 0;
  }
  auto w = j.find("sliding_window");
  if (w == j.end() || w->is_null()) {
    if (listed) fail("[config.json] layer_types names sliding layers but sliding_window is unset");
    return 0;
  }
  if (!w->is_number_integer() || w->get<int64_t>() <= 0) {
    fail("[config.json] sliding_window must be a positive integer, got ", w->dump());
  }
  if (!listed) {
    auto m = j.find("max_window_layers");
    const int64_t first = (m != j.end() && m->is_number_integer()) ? m->get<int64_t>() : 0;
    if (layer < first) return 0;
  }
  return w->get<int64_t>();
}

}  // namespace

std::optional<NsaOptions> nsa_options(const ModelConfig& c) {
  auto it = c.raw.find("nsa");
  if (it == c.raw.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) fail("[config.json] nsa must be an object");
  if (c.is_mla()) fail("[config.json] nsa applies to GQA models (llama, qwen2), not MLA");
  auto get = [&](const char* key, int64_t lo, int64_t fallback) {
    auto v = it->find(key);
    if (v == it->end()) return fallback;
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > (1 << 20)) {
      fail("[config.json] nsa.", key, " must be an integer >= ", lo, ", got ", v->dump());
    }
    return v->get<int64_t>();
  };
  NsaOptions o;
  o.block_size = get("block_size", 1, 64);
  o.block_counts = get("block_counts", 2, 16);
  o.window_size = get("window_size", 0, 512);
  return o;
}

AttentionKind attention_kind(const ModelConfig& c, int layer) {
  if (c.is_mla()) {
    nsa_options(c);  // refuses nsa on MLA
    return c.has_indexer() ? AttentionKind::kDsa : AttentionKind::kMla;
  }
  if (nsa_options(c)) return AttentionKind::kNsa;
  return sliding_window_of(c, layer) > 0 ? AttentionKind::kSlidingWindow : AttentionKind::kGqa;
}

std::unique_ptr<Attention> make_attention(ParamTable& t, const std::string& prefix,
                                          const ModelConfig& c, const RopeTable& rope, int layer) {
  switch (attention_kind(c, layer)) {
    case AttentionKind::kMla: return make_mla(t, prefix, c, rope);
    case AttentionKind::kGqa: return make_gqa(t, prefix, c, rope, 0);
    case AttentionKind::kSlidingWindow:
      return make_gqa(t, prefix, c, rope, sliding_window_of(c, layer));
    case AttentionKind::kNsa: return make_nsa(t, prefix, c, rope, *nsa_options(c));
    case AttentionKind::kDsa: return make_dsa(t, prefix, c, rope);
  }
  fail("unknown attention kind");
}

bool decode_row_blocks(const DecodeStep& step,
                       const std::function<void(const DecodeStep&, int64_t)>& fn) {
  constexpr int64_t kMinRows = 8;
  const int64_t B = static_cast<int64_t>(step.rows.size());
  const int threads = max_threads();
  if (step.prefill || step.selections != nullptr || threads < 2 || B < 2 * kMinRows) return false;
  const int64_t blocks = std::min<int64_t>(threads, B / kMinRows);
  std::vector<int64_t> cut = {0};
  for (int64_t k = 1; k < blocks; ++k) {
    int64_t b = std::max(cut.back() + 1, B * k / blocks);
    while (b < B && step.rows[b] == step.rows[b - 1]) ++b;
    if (b < B) cut.push_back(b);
  }
  cut.push_back(B);
  if (cut.size() < 3) return false;
  std::vector<std::pair<const void*, size_t>> owner;
  for (size_t i = 0; i + 1 < cut.size(); ++i) {
    for (int64_t b = cut[i]; b < cut[i + 1]; ++b) owner.emplace_back(step.rows[b], i);
  }
  std::sort(owner.begin(), owner.end());
  for (size_t i = 1; i < owner.size(); ++i) {
    if (owner[i].first == owner[i - 1].first && owner[i].second != owner[i - 1].second) {
      return false;
    }
  }
  tbb::parallel_for(
      tbb::blocked_range<size_t>(0, cut.size() - 1, 1),
      [&](const tbb::blocked_range<size_t>& r) {
        for (size_t i = r.begin(); i < r.end(); ++i) {
          DecodeStep block;
          block.rows.assign(step.rows.begin() + cut[i], step.rows.begin() + cut[i + 1]);
          block.positions = step.positions + cut[i];
          block.absorbed = step.absorbed;
          block.in_row_block = true;
          fn(block, cut[i]);
        }
      },
      tbb::simple_partitioner());
  return true;
}

void scaled_softmax_rows(float* s, int64_t n_rows, int64_t n, float scale) {
  scaled_softmax_rows(s, n_rows, n, n, 0, scale);
}

namespace {

// r[0, n) *= f in place; returns the largest product. Whole blocks of 16, then the 1-15 keys left
// in one masked vector (the plain loop's epilogue was scalar). The max goes 16 lanes at a time
// and then across the lanes: it is exact, so any order gives the serial loop's value, and a lane
// updates as std::max does (m < v ? v : m), passing a NaN over.
float scale_row(float* r, int64_t n, float f) {
  constexpr float kLow = -std::numeric_limits<float>::infinity();
  V16 m16 = V16{} + kLow;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    V16 v;
    __builtin_memcpy(&v, r + j, sizeof(v));
    v *= f;
    __builtin_memcpy(r + j, &v, sizeof(v));
    m16 = m16 < v ? v : m16;
  }
  if (j < n) {
    const V16 v = load_part(r + j, n - j, 0.0f) * f;
    store_part(r + j, n - j, v);
    const V16 kept = first_lanes(v, n - j, kLow);
    m16 = m16 < kept ? kept : m16;
  }
  return max_across(m16);
}

}  // namespace

void scaled_softmax_rows(float* s, int64_t n_rows, int64_t ld, int64_t n0, int64_t step,
                         float scale) {
  // 16 rows at a time: their exponentials and the parts of their sums, the sums (row_sums), then
  // each row times the reciprocal of its own.
  for (int64_t i0 = 0; i0 < n_rows; i0 += 16) {
    const int m = static_cast<int>(std::min<int64_t>(16, n_rows - i0));
    V16 lanes[16], tails[16];
    float sums[16];
    for (int i = 0; i < m; ++i) {
      float* r = s + (i0 + i) * ld;
      const int64_t n = n0 + (i0 + i) * step;
      const float mx = scale_row(r, n, scale);
      V16 acc = {};
      int64_t j = 0;
      for (; j + 16 <= n; j += 16) {
        V16 v;
        __builtin_memcpy(&v, r + j, sizeof(v));
        v = exp_nonpos(v - mx);
        __builtin_memcpy(r + j, &v, sizeof(v));
        acc += v;
      }
      // The sum's order is the bits' (lanes 0..15, then the keys left one by one).
      lanes[i] = acc;
      tails[i] = V16{};
      if (j < n) {
        const V16 v = exp_nonpos(load_part(r + j, n - j, mx) - mx);  // lanes past the row: exp(0)
        store_part(r + j, n - j, v);
        tails[i] = first_lanes(v, n - j, 0.0f);
      }
    }
    row_sums(lanes, tails, m, sums);
    for (int i = 0; i < m; ++i) {
      scale_row(s + (i0 + i) * ld, n0 + (i0 + i) * step, 1.0f / sums[i]);  // its max unused
    }
  }
}

}  // namespace aha::policy
