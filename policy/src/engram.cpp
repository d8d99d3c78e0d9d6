// Engram's layer: table lookup, context-aware gate, value projection and short convolution,
// forward and hand-written backward. Hashing lives in engram_hash.cpp.
#include "aha/policy/engram.h"

#include <cmath>
#include <type_traits>
#include <utility>

#include "aha/core/error.h"
#include "aha/core/tensor.h"
#include "aha/policy/layers.h"
#include "for_chunks.h"

namespace aha::policy {

namespace {

// torch.nn.RMSNorm(eps=None) in float32, the demo's gate norms; the conv norms use 1e-5.
constexpr double kGateNormEps = 1.1920928955078125e-07;
constexpr double kConvNormEps = 1e-5;
constexpr double kGateClamp = 1e-6;
constexpr int64_t kTokenChunk = 16;
constexpr int64_t kChannelChunk =
    64;  // tokens per parallel task (fixed: results thread-independent)

int streams_of(const ModelConfig& c) { return c.has_hc() ? c.hc_mult : 1; }

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
void linear(const T* x, const T* w, const T* b, T* y, int64_t n, int in, int out, bool rowstable) {
  if (rowstable) {
    gemm_xwt_rowstable(x, w, b, y, n, in, out);
  } else {
    gemm_xwt(x, w, b, y, n, in, out);
  }
}

// The rows of history (decode) or of the sequence (training) a tap reaches: z at token t - back
// of stream s, channel block [d]; null where that is before the sequence start (zero padding).
template <typename T>
const T* conv_input(const EngramActs<T>& a, const EngramState& st, int64_t n, int s, int d, int m,
                    int64_t t, int64_t t0, int64_t back, int64_t hist_rows) {
  if (back == 0) return a.z.data() + (s * n + t) * d;
  if (st.history != nullptr) {
    if constexpr (std::is_same_v<T, float>) {
      return st.history[t] + (hist_rows - back) * int64_t{m} * d + s * d;
    }
    return nullptr;
  }
  return t - back >= t0 ? a.z.data() + (s * n + t - back) * d : nullptr;
}

// [first, end) of each token's sequence.
std::pair<std::vector<int64_t>, std::vector<int64_t>> seq_bounds(const SeqLayout& layout) {
  std::vector<int64_t> first(layout.n_tokens()), last(layout.n_tokens());
  for (size_t q = 0; q + 1 < layout.seq_starts.size(); ++q) {
    for (int64_t t = layout.seq_starts[q]; t < layout.seq_starts[q + 1]; ++t) {
      first[t] = layout.seq_starts[q];
      last[t] = layout.seq_starts[q + 1];
    }
  }
  return {std::move(first), std::move(last)};
}

// c = conv(z) per sequence (or against the decode history), then the output is added to X.
// Tokens in parallel: each writes only its own rows.
template <typename T>
void conv_forward(const ModelConfig& c, const EngramP& p, const T* P, T* X, EngramActs<T>& a,
                  const SeqLayout& layout, const EngramState& st) {
  const int64_t n = layout.n_tokens();
  const int m = p.streams, d = c.hidden_size, K = c.engram->kernel_size;
  const int N = c.engram->max_ngram_size;
  const int64_t hist_rows = engram_history_rows(c);
  const auto first = seq_bounds(layout).first;
  a.c.assign(int64_t{m} * n * d, T(0));
  for_chunks(n, kTokenChunk, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      for (int s = 0; s < m; ++s) {
        T* cr = a.c.data() + (s * n + t) * d;
        for (int j = 0; j < K; ++j) {
          const T* zr =
              conv_input(a, st, n, s, d, m, t, first[t], int64_t{K - 1 - j} * N, hist_rows);
          if (zr == nullptr) continue;
          const T* w = P + p.conv_w + int64_t{s} * d * K + j;
          for (int i = 0; i < d; ++i) cr[i] += w[int64_t{i} * K] * zr[i];
        }
        const T* ur = a.u.data() + (s * n + t) * d;
        T* xr = X + t * m * d + s * d;
        for (int i = 0; i < d; ++i) xr[i] += ur[i] + cr[i] * sigmoid(cr[i]);
      }
    }
  });
}

// Decode: every row's history moves one token on; prefill: the sequence's last rows are saved.
void advance_history(const ModelConfig& c, const EngramActs<float>& a, const EngramState& st,
                     int64_t n, int m) {
  const int d = c.hidden_size;
  const int64_t R = engram_history_rows(c), w = int64_t{m} * d;
  if (st.history != nullptr) {
    for (int64_t b = 0; b < n; ++b) {
      float* h = st.history[b];
      std::copy(h + w, h + R * w, h);
      for (int s = 0; s < m; ++s)
        std::copy_n(a.z.data() + (s * n + b) * d, d, h + (R - 1) * w + s * d);
    }
  }
  if (st.history_out != nullptr) {
    std::fill(st.history_out, st.history_out + R * w, 0.f);
    for (int64_t r = 0; r < R && r < n; ++r) {
      const int64_t t = n - 1 - r;
      for (int s = 0; s < m; ++s) {
        std::copy_n(a.z.data() + (s * n + t) * d, d, st.history_out + (R - 1 - r) * w + s * d);
      }
    }
  }
}

// e [n, width]: the looked-up rows of every head, concatenated.
template <typename T>
void lookup(const ModelConfig& c, const EngramP& p, const T* P, const int32_t* ngram_ids,
            EngramActs<T>& a, int64_t n) {
  const EngramHash& h = *p.hash;
  const int H = c.engram->n_heads(), hd = c.engram->head_dim();
  a.rows.resize(n * H);
  engram_hash_indices(h, ngram_ids, n, a.rows.data());
  a.e.resize(n * H * hd);
  for (int64_t t = 0; t < n; ++t) {
    for (int k = 0; k < H; ++k) {
      int64_t& r = a.rows[t * H + k];
      r += h.offsets[k];
      std::copy_n(P + p.table + r * hd, hd, a.e.data() + (t * H + k) * hd);
    }
  }
}

}  // namespace

int64_t engram_history_rows(const ModelConfig& c) {
  return c.engram ? int64_t{c.engram->kernel_size - 1} * c.engram->max_ngram_size : 0;
}

EngramP add_engram(ParamTable& t, const std::string& prefix, const ModelConfig& c, int layer) {
  const EngramConfig& g = *c.engram;
  const int m = streams_of(c), d = c.hidden_size, W = g.width();
  EngramP p;
  p.streams = m;
  p.hash = std::make_shared<const EngramHash>(make_engram_hash(g, c.vocab_size, layer));
  const std::string table = prefix + ".multi_head_embedding.embedding.weight";
  p.table = t.add(table, {p.hash->rows, g.head_dim()}, !g.freeze_table);
  t.mark_sparse_rows(table);
  p.table_frozen = g.freeze_table;
  p.conv_w = t.add(prefix + ".short_conv.conv.weight", {int64_t{m} * d, 1, g.kernel_size});
  for (int s = 0; s < m; ++s) {
    p.conv_norm.push_back(
        add_norm(t, prefix + ".short_conv.norms." + std::to_string(s) + ".weight", d).w);
  }
  p.value_w = t.add(prefix + ".value_proj.weight", {d, W});
  p.value_b = t.add(prefix + ".value_proj.bias", {d});
  for (int s = 0; s < m; ++s) {
    const std::string k = prefix + ".key_projs." + std::to_string(s);
    p.key_w.push_back(t.add(k + ".weight", {d, W}));
    p.key_b.push_back(t.add(k + ".bias", {d}));
  }
  for (int s = 0; s < m; ++s) {
    p.norm1.push_back(add_norm(t, prefix + ".norm1." + std::to_string(s) + ".weight", d).w);
  }
  for (int s = 0; s < m; ++s) {
    p.norm2.push_back(add_norm(t, prefix + ".norm2." + std::to_string(s) + ".weight", d).w);
  }
  return p;
}

template <typename T>
void engram_forward(const ModelConfig& c, const EngramP& p, const T* P, const int32_t* ngram_ids,
                    T* X, EngramActs<T>& a, const SeqLayout& layout, const EngramState& st,
                    bool rowstable) {
  const int64_t n = layout.n_tokens();
  const int m = p.streams, d = c.hidden_size, W = c.engram->width();
  lookup(c, p, P, ngram_ids, a, n);
  a.x_in.assign(X, X + n * m * d);
  a.k.resize(m * n * d);
  a.kn.resize(m * n * d);
  a.krstd.resize(m * n);
  a.qn.resize(m * n * d);
  a.qrstd.resize(m * n);
  a.gate.resize(m * n);
  a.alpha.resize(m * n);
  a.v.resize(n * d);
  a.u.resize(m * n * d);
  a.z.resize(m * n * d);
  a.zrstd.resize(m * n);
  linear(a.e.data(), P + p.value_w, P + p.value_b, a.v.data(), n, W, d, rowstable);
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
  for (int s = 0; s < m; ++s) {
    T* k = a.k.data() + s * n * d;
    T* kn = a.kn.data() + s * n * d;
    T* qn = a.qn.data() + s * n * d;
    linear(a.e.data(), P + p.key_w[s], P + p.key_b[s], k, n, W, d, rowstable);
    rmsnorm_forward(k, P + p.norm1[s], kn, a.krstd.data() + s * n, n, d, kGateNormEps);
    rmsnorm_forward(a.x_in.data() + s * d, P + p.norm2[s], qn, a.qrstd.data() + s * n, n, d,
                    kGateNormEps, int64_t{m} * d);
    for_chunks(n, kTokenChunk, [&](int64_t, int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += double(kn[t * d + i]) * qn[t * d + i];
        const double g = dot * inv_sqrt_d;
        const double root = std::sqrt(std::max(std::abs(g), kGateClamp));
        a.gate[s * n + t] = static_cast<T>(g);
        const T alpha = sigmoid(static_cast<T>(g < 0 ? -root : g > 0 ? root : 0));
        a.alpha[s * n + t] = alpha;
        T* u = a.u.data() + (s * n + t) * d;
        for (int i = 0; i < d; ++i) u[i] = alpha * a.v[t * d + i];
      }
    });
    rmsnorm_forward(a.u.data() + s * n * d, P + p.conv_norm[s], a.z.data() + s * n * d,
                    a.zrstd.data() + s * n, n, d, kConvNormEps);
  }
  conv_forward(c, p, P, X, a, layout, st);
  if constexpr (std::is_same_v<T, float>) {
    advance_history(c, a, st, n, m);
  } else {
    AHA_CHECK(st.history == nullptr && st.history_out == nullptr, "decode runs in float only");
  }
}

namespace {

// From d output (dX) to du (stream-major): the direct path and the conv branch, with the conv
// weights' and conv norms' gradients. Three parallel passes, each a fixed-order sum per output:
// dc per token, dz gathered from the taps that read it, the weights' gradient per channel.
template <typename T>
void conv_backward(const ModelConfig& c, const EngramP& p, const T* P, T* G, const EngramActs<T>& a,
                   const SeqLayout& layout, const T* dX, Buf<T>& du) {
  const int64_t n = layout.n_tokens();
  const int m = p.streams, d = c.hidden_size, K = c.engram->kernel_size;
  const int N = c.engram->max_ngram_size;
  const auto [first, last] = seq_bounds(layout);
  Buf<T> dc(m * n * d), dz(m * n * d, T(0));
  du.resize(m * n * d);
  for_chunks(n, kTokenChunk, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      for (int s = 0; s < m; ++s) {
        const T* dy = dX + t * m * d + s * d;
        const T* cr = a.c.data() + (s * n + t) * d;
        T* dcr = dc.data() + (s * n + t) * d;
        T* dur = du.data() + (s * n + t) * d;
        for (int i = 0; i < d; ++i) {
          const T sg = sigmoid(cr[i]);
          dcr[i] = dy[i] * sg * (T(1) + cr[i] * (T(1) - sg));
          dur[i] = dy[i];
        }
      }
    }
  });
  // z at t feeds tap j of the output at t + (K - 1 - j) N in the same sequence.
  for_chunks(n, kTokenChunk, [&](int64_t, int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      for (int s = 0; s < m; ++s) {
        T* dzr = dz.data() + (s * n + t) * d;
        for (int j = 0; j < K; ++j) {
          const int64_t to = t + int64_t{K - 1 - j} * N;
          if (to >= last[t]) continue;
          const T* dcr = dc.data() + (s * n + to) * d;
          const T* w = P + p.conv_w + int64_t{s} * d * K + j;
          for (int i = 0; i < d; ++i) dzr[i] += w[int64_t{i} * K] * dcr[i];
        }
      }
    }
  });
  // Channels in blocks of kChannelChunk, tokens outer so rows are read contiguously.
  for_chunks(int64_t{m} * d, kChannelChunk, [&](int64_t, int64_t b, int64_t e) {
    std::vector<double> acc((e - b) * K, 0.0);
    for (int64_t t = 0; t < n; ++t) {
      for (int j = 0; j < K; ++j) {
        const int64_t back = int64_t{K - 1 - j} * N;
        if (t - back < first[t]) continue;
        for (int64_t ch = b; ch < e; ++ch) {
          const int64_t s = ch / d, i = ch % d;
          acc[(ch - b) * K + j] +=
              double(dc[(s * n + t) * d + i]) * a.z[(s * n + t - back) * d + i];
        }
      }
    }
    for (int64_t ch = b; ch < e; ++ch) {
      for (int j = 0; j < K; ++j) G[p.conv_w + ch * K + j] += static_cast<T>(acc[(ch - b) * K + j]);
    }
  });
  for (int s = 0; s < m; ++s) {
    rmsnorm_backward(dz.data() + s * n * d, a.u.data() + s * n * d, P + p.conv_norm[s],
                     a.zrstd.data() + s * n, du.data() + s * n * d, G + p.conv_norm[s], n, d);
  }
}

}  // namespace

template <typename T>
void engram_backward(const ModelConfig& c, const EngramP& p, const T* P, T* G,
                     const EngramActs<T>& a, const SeqLayout& layout, T* dX) {
  const int64_t n = layout.n_tokens();
  const int m = p.streams, d = c.hidden_size, W = c.engram->width();
  const int H = c.engram->n_heads(), hd = c.engram->head_dim();
  Buf<T> du;
  conv_backward(c, p, P, G, a, layout, dX, du);
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
  Buf<T> dv(n * d, T(0)), de(n * W, T(0)), dk(n * d), dkn(n * d), dqn(n * d);
  for (int s = 0; s < m; ++s) {
    const T* kn = a.kn.data() + s * n * d;
    const T* qn = a.qn.data() + s * n * d;
    for (int64_t t = 0; t < n; ++t) {
      const T* dur = du.data() + (s * n + t) * d;
      const T alpha = a.alpha[s * n + t];
      double dalpha = 0;
      for (int i = 0; i < d; ++i) {
        dalpha += double(dur[i]) * a.v[t * d + i];
        dv[t * d + i] += alpha * dur[i];
      }
      // d/dg of sign(g) sqrt(max(|g|, clamp)): 1 / (2 sqrt|g|) outside the clamp, 0 inside.
      const double g = std::abs(double(a.gate[s * n + t]));
      const double dssqrt = g > kGateClamp ? 0.5 / std::sqrt(g) : 0.0;
      const T dg = static_cast<T>(dalpha * alpha * (1 - alpha) * dssqrt * inv_sqrt_d);
      for (int i = 0; i < d; ++i) {
        dkn[t * d + i] = dg * qn[t * d + i];
        dqn[t * d + i] = dg * kn[t * d + i];
      }
    }
    std::fill(dk.begin(), dk.end(), T(0));
    rmsnorm_backward(dkn.data(), a.k.data() + s * n * d, P + p.norm1[s], a.krstd.data() + s * n,
                     dk.data(), G + p.norm1[s], n, d);
    rmsnorm_backward(dqn.data(), a.x_in.data() + s * d, P + p.norm2[s], a.qrstd.data() + s * n,
                     dX + s * d, G + p.norm2[s], n, d, int64_t{m} * d);
    gemm_dytx(dk.data(), a.e.data(), G + p.key_w[s], G + p.key_b[s], n, W, d);
    if (!p.table_frozen) gemm_dyw(dk.data(), P + p.key_w[s], de.data(), n, W, d);
  }
  gemm_dytx(dv.data(), a.e.data(), G + p.value_w, G + p.value_b, n, W, d);
  if (p.table_frozen) return;
  gemm_dyw(dv.data(), P + p.value_w, de.data(), n, W, d);
  // Sparse: only the looked-up rows of the table receive gradient (serially: rows collide).
  for (int64_t t = 0; t < n; ++t) {
    for (int k = 0; k < H; ++k) {
      T* row = G + p.table + a.rows[t * H + k] * hd;
      const T* g = de.data() + (t * H + k) * hd;
      for (int i = 0; i < hd; ++i) row[i] += g[i];
    }
  }
}

#define AHA_INSTANTIATE_ENGRAM(T)                                                                  \
  template void engram_forward<T>(const ModelConfig&, const EngramP&, const T*, const int32_t*,    \
                                  T*, EngramActs<T>&, const SeqLayout&, const EngramState&, bool); \
  template void engram_backward<T>(const ModelConfig&, const EngramP&, const T*, T*,               \
                                   const EngramActs<T>&, const SeqLayout&, T*);

AHA_INSTANTIATE_ENGRAM(float)
AHA_INSTANTIATE_ENGRAM(double)

}  // namespace aha::policy
