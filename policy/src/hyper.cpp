// Hyper-connection weights (pre, post, Sinkhorn comb), the collapse and expand of the streams,
// and their backward. Weights are recomputed per token in backward from the stored logits (a
// 20-step Sinkhorn on an m x m matrix costs less than keeping its trace).
#include "aha/policy/hyper.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

#include "aha/core/error.h"
#include "aha/core/gemm_bf16.h"
#include "aha/core/tensor.h"
#include "for_chunks.h"

namespace aha::policy {

HcP add_hc(ParamTable& t, const std::string& prefix, const ModelConfig& c) {
  HcP p;
  p.mult = c.hc_mult;
  const int64_t m = c.hc_mult, K = (m + 2) * m;
  p.fn = t.add(prefix + ".fn", {K, m * c.hidden_size});
  p.base = t.add(prefix + ".base", {K});
  p.scale = t.add(prefix + ".scale", {3});
  return p;
}

HcP add_hc_head(ParamTable& t, const ModelConfig& c) {
  HcP p;
  p.mult = c.hc_mult;
  p.head = true;
  const int64_t m = c.hc_mult;
  p.fn = t.add("model.hc_head.hc_fn", {m, m * c.hidden_size});
  p.base = t.add("model.hc_head.hc_base", {m});
  p.scale = t.add("model.hc_head.hc_scale", {1});
  return p;
}

namespace {

constexpr int64_t kChunk = 16;  // tokens per parallel task
constexpr int kMaxMix = 16 * 16;

int n_mix(const HcP& p) { return p.head ? p.mult : (p.mult + 2) * p.mult; }

template <typename T>
T sigmoid(T a) {
  return T(1) / (T(1) + std::exp(-a));
}

// The comb logits of one token: scale[2] * mix + base over the m*m comb entries.
template <typename T>
void comb_logits(const T* mix, const T* base, T scale, int m, T* L) {
  for (int k = 0; k < m * m; ++k) L[k] = scale * mix[2 * m + k] + base[2 * m + k];
}

// One Sinkhorn step: every column (cols) or row of in divided by its sum + eps, into out.
template <typename T>
void normalize(const T* in, T* out, int m, T eps, bool cols) {
  for (int i = 0; i < m; ++i) {
    auto at = [&](int j) { return cols ? j * m + i : i * m + j; };
    T s = 0;
    for (int j = 0; j < m; ++j) s += in[at(j)];
    s += eps;
    for (int j = 0; j < m; ++j) out[at(j)] = in[at(j)] / s;
  }
}

}  // namespace

template <typename T>
void sinkhorn_forward(const T* logits, int m, int iters, double eps_d, T* out, T* trace) {
  AHA_CHECK(m > 0 && m * m <= kMaxMix && iters >= 1, "sinkhorn of ", m, " x ", m);
  const T eps = static_cast<T>(eps_d);
  std::array<T, kMaxMix> a{}, b{};
  for (int p = 0; p < m; ++p) {
    const T* row = logits + p * m;
    T mx = *std::max_element(row, row + m), s = 0;
    for (int q = 0; q < m; ++q) s += (a[p * m + q] = std::exp(row[q] - mx));
    for (int q = 0; q < m; ++q) a[p * m + q] = a[p * m + q] / s + eps;
  }
  const int mm = m * m;
  if (trace != nullptr) std::copy_n(a.data(), mm, trace);
  normalize(a.data(), b.data(), m, eps, true);
  if (trace != nullptr) std::copy_n(b.data(), mm, trace + mm);
  for (int it = 1; it < iters; ++it) {
    normalize(b.data(), a.data(), m, eps, false);
    if (trace != nullptr) std::copy_n(a.data(), mm, trace + (2 * it) * mm);
    normalize(a.data(), b.data(), m, eps, true);
    if (trace != nullptr) std::copy_n(b.data(), mm, trace + (2 * it + 1) * mm);
  }
  std::copy_n(b.data(), mm, out);
}

template <typename T>
void sinkhorn_backward(const T* trace, const T* dout, int m, int iters, double eps_d,
                       T* dlogits) {
  const T eps = static_cast<T>(eps_d);
  const int mm = m * m;
  std::array<T, kMaxMix> g{};
  std::copy_n(dout, mm, g.data());
  // Step k maps trace[k-1] to trace[k]; odd steps normalise columns, even steps rows. For
  // x' = x / s with s = sum + eps: dx = (dx' - sum(dx' * x')) / s over the same column/row.
  for (int k = 2 * iters - 1; k >= 1; --k) {
    const T* in = trace + (k - 1) * mm;
    const T* out = trace + k * mm;
    const bool cols = k % 2 == 1;
    for (int i = 0; i < m; ++i) {
      auto at = [&](int j) { return cols ? j * m + i : i * m + j; };
      T s = eps, c = 0;
      for (int j = 0; j < m; ++j) {
        s += in[at(j)];
        c += g[at(j)] * out[at(j)];
      }
      for (int j = 0; j < m; ++j) g[at(j)] = (g[at(j)] - c) / s;
    }
  }
  // trace[0] = softmax + eps, row by row.
  for (int p = 0; p < m; ++p) {
    T c = 0;
    for (int q = 0; q < m; ++q) c += g[p * m + q] * (trace[p * m + q] - eps);
    for (int q = 0; q < m; ++q) {
      dlogits[p * m + q] = (trace[p * m + q] - eps) * (g[p * m + q] - c);
    }
  }
}

template <typename T>
void hc_expand_embedding(const T* x, T* X, int64_t n, int m, int d) {
  for (int64_t t = 0; t < n; ++t) {
    for (int p = 0; p < m; ++p) std::copy_n(x + t * d, d, X + (t * m + p) * d);
  }
}

template <typename T>
void hc_collapse(const ModelConfig& c, const HcP& p, const T* P, const T* X, T* u, HcActs<T>& a,
                 int64_t n, bool keep, bool rowstable) {
  const int m = p.mult, d = c.hidden_size, K = n_mix(p);
  const int64_t w = int64_t{m} * d;
  if (keep) a.x_in.assign(X, X + n * w);
  a.mix.resize(n * K);
  a.rho.resize(n);
  a.pre.resize(n * m);
  if (!p.head) {
    a.post.resize(n * m);
    a.comb.resize(n * m * m);
  }
  // The mixes stay fp32 under `precision: bf16`, as DeepSeek-V4 computes them: the Sinkhorn
  // projection would amplify bf16 rounding of its logits.
  Fp32MatmulScope fp32_mixes;
  if constexpr (std::is_same_v<T, float>) {
    if (rowstable) {
      gemm_xwt_rowstable(X, P + p.fn, static_cast<const T*>(nullptr), a.mix.data(), n, w, K);
    } else {
      gemm_xwt(X, P + p.fn, static_cast<const T*>(nullptr), a.mix.data(), n, w, K);
    }
  } else {
    gemm_xwt(X, P + p.fn, static_cast<const T*>(nullptr), a.mix.data(), n, w, K);
  }
  const T* base = P + p.base;
  const T* scale = P + p.scale;
  const T eps = static_cast<T>(c.hc_eps);
  for_chunks(n, kChunk, [&](int64_t, int64_t t0, int64_t t1) {
    std::array<T, kMaxMix> L{};
    for (int64_t t = t0; t < t1; ++t) {
      const T* x = X + t * w;
      double ss = 0;
      for (int64_t i = 0; i < w; ++i) ss += double(x[i]) * double(x[i]);
      const T rho = static_cast<T>(1.0 / std::sqrt(ss / double(w) + c.rms_norm_eps));
      a.rho[t] = rho;
      T* mix = a.mix.data() + t * K;
      for (int k = 0; k < K; ++k) mix[k] *= rho;
      T* pre = a.pre.data() + t * m;
      for (int q = 0; q < m; ++q) pre[q] = sigmoid(scale[0] * mix[q] + base[q]) + eps;
      if (!p.head) {
        for (int q = 0; q < m; ++q) {
          a.post[t * m + q] = 2 * sigmoid(scale[1] * mix[m + q] + base[m + q]);
        }
        comb_logits(mix, base, scale[2], m, L.data());
        sinkhorn_forward(L.data(), m, c.hc_sinkhorn_iters, c.hc_eps, a.comb.data() + t * m * m,
                         static_cast<T*>(nullptr));
      }
      T* ut = u + t * d;
      std::fill(ut, ut + d, T(0));
      for (int q = 0; q < m; ++q) {
        for (int i = 0; i < d; ++i) ut[i] += pre[q] * x[int64_t{q} * d + i];
      }
    }
  });
}

template <typename T>
void hc_expand(const ModelConfig& c, const T* y, T* X, HcActs<T>& a, int64_t n, bool keep) {
  const int m = c.hc_mult, d = c.hidden_size;
  const int64_t w = int64_t{m} * d;
  if (keep) a.y.assign(y, y + n * d);
  for_chunks(n, kChunk, [&](int64_t, int64_t t0, int64_t t1) {
    std::vector<T> old(w);
    for (int64_t t = t0; t < t1; ++t) {
      T* x = X + t * w;
      std::copy_n(x, w, old.data());
      const T* post = a.post.data() + t * m;
      const T* comb = a.comb.data() + t * m * m;
      const T* yt = y + t * d;
      for (int q = 0; q < m; ++q) {
        T* xq = x + int64_t{q} * d;
        for (int i = 0; i < d; ++i) xq[i] = post[q] * yt[i];
        for (int pp = 0; pp < m; ++pp) {
          const T cpq = comb[pp * m + q];
          const T* op = old.data() + int64_t{pp} * d;
          for (int i = 0; i < d; ++i) xq[i] += cpq * op[i];
        }
      }
    }
  });
}

template <typename T>
void hc_expand_backward(const ModelConfig& c, const HcActs<T>& a, T* dX, T* dy, T* dpost,
                        T* dcomb, int64_t n) {
  const int m = c.hc_mult, d = c.hidden_size;
  const int64_t w = int64_t{m} * d;
  AHA_CHECK(static_cast<int64_t>(a.x_in.size()) == n * w && static_cast<int64_t>(a.y.size()) == n * d,
            "hyper-connection backward needs a forward that kept its inputs");
  for_chunks(n, kChunk, [&](int64_t, int64_t t0, int64_t t1) {
    std::vector<T> g(w);
    for (int64_t t = t0; t < t1; ++t) {
      T* dx = dX + t * w;
      std::copy_n(dx, w, g.data());
      const T* x = a.x_in.data() + t * w;
      const T* yt = a.y.data() + t * d;
      const T* post = a.post.data() + t * m;
      const T* comb = a.comb.data() + t * m * m;
      T* dyt = dy + t * d;
      std::fill(dyt, dyt + d, T(0));
      for (int q = 0; q < m; ++q) {
        const T* gq = g.data() + int64_t{q} * d;
        T dp = 0;
        for (int i = 0; i < d; ++i) {
          dyt[i] += post[q] * gq[i];
          dp += gq[i] * yt[i];
        }
        dpost[t * m + q] = dp;
        for (int pp = 0; pp < m; ++pp) {
          const T* xp = x + int64_t{pp} * d;
          T dc = 0;
          for (int i = 0; i < d; ++i) dc += gq[i] * xp[i];
          dcomb[t * m * m + pp * m + q] = dc;
        }
      }
      for (int pp = 0; pp < m; ++pp) {
        T* dxp = dx + int64_t{pp} * d;
        std::fill(dxp, dxp + d, T(0));
        for (int q = 0; q < m; ++q) {
          const T cpq = comb[pp * m + q];
          const T* gq = g.data() + int64_t{q} * d;
          for (int i = 0; i < d; ++i) dxp[i] += cpq * gq[i];
        }
      }
    }
  });
}

template <typename T>
void hc_collapse_backward(const ModelConfig& c, const HcP& p, const T* P, T* G,
                          const HcActs<T>& a, const T* du, const T* dpost, const T* dcomb, T* dX,
                          int64_t n) {
  const int m = p.mult, d = c.hidden_size, K = n_mix(p);
  const int64_t w = int64_t{m} * d;
  AHA_CHECK(static_cast<int64_t>(a.x_in.size()) == n * w,
            "hyper-connection backward needs a forward that kept its inputs");
  const T* base = P + p.base;
  const T* scale = P + p.scale;
  const T eps = static_cast<T>(c.hc_eps);
  // dact: d loss / d (scale * mix + base) per logit; dz: d loss / d (fn x), the unnormalised mix.
  Buf<T> dact(n * K), dz(n * K);
  for_chunks(n, kChunk, [&](int64_t, int64_t t0, int64_t t1) {
    std::array<T, kMaxMix> L{}, C{}, dL{};
    std::vector<T> trace(p.head ? 0 : 2 * size_t(c.hc_sinkhorn_iters) * m * m);
    for (int64_t t = t0; t < t1; ++t) {
      const T* x = a.x_in.data() + t * w;
      const T* dut = du + t * d;
      const T* pre = a.pre.data() + t * m;
      const T* mix = a.mix.data() + t * K;
      T* da = dact.data() + t * K;
      T* dx = dX + t * w;
      for (int q = 0; q < m; ++q) {
        T dpre = 0;
        const T* xq = x + int64_t{q} * d;
        T* dxq = dx + int64_t{q} * d;
        for (int i = 0; i < d; ++i) {
          dpre += dut[i] * xq[i];
          dxq[i] += pre[q] * dut[i];
        }
        const T s = pre[q] - eps;
        da[q] = dpre * s * (1 - s);
      }
      if (!p.head) {
        for (int q = 0; q < m; ++q) {
          const T s = a.post[t * m + q] / 2;
          da[m + q] = dpost[t * m + q] * 2 * s * (1 - s);
        }
        comb_logits(mix, base, scale[2], m, L.data());
        sinkhorn_forward(L.data(), m, c.hc_sinkhorn_iters, c.hc_eps, C.data(), trace.data());
        sinkhorn_backward(trace.data(), dcomb + t * m * m, m, c.hc_sinkhorn_iters, c.hc_eps,
                          dL.data());
        for (int k = 0; k < m * m; ++k) da[2 * m + k] = dL[k];
      }
      // mix = rho * z: dz = rho * dmix, and rho's own gradient goes to x below.
      const T rho = a.rho[t];
      T drho = 0;
      for (int k = 0; k < K; ++k) {
        const T sk = scale[k < m ? 0 : (k < 2 * m ? 1 : 2)];
        const T dmix = sk * da[k];
        dz[t * K + k] = rho * dmix;
        drho += dmix * mix[k] / rho;
      }
      // rho = (mean(x^2) + eps)^-1/2: d rho / d x_i = -rho^3 x_i / w.
      const T f = -drho * rho * rho * rho / static_cast<T>(w);
      for (int64_t i = 0; i < w; ++i) dx[i] += f * x[i];
    }
  });
  // Parameter gradients summed over tokens in a fixed order.
  T* gbase = G + p.base;
  T* gscale = G + p.scale;
  for (int64_t t = 0; t < n; ++t) {
    for (int k = 0; k < K; ++k) {
      const T g = dact[t * K + k];
      gbase[k] += g;
      gscale[k < m ? 0 : (k < 2 * m ? 1 : 2)] += g * a.mix[t * K + k];
    }
  }
  Fp32MatmulScope fp32_mixes;
  gemm_dytx(dz.data(), a.x_in.data(), G + p.fn, static_cast<T*>(nullptr), n, w, K);
  gemm_dyw(dz.data(), P + p.fn, dX, n, w, K);
}

#define AHA_INSTANTIATE_HC(T)                                                                   \
  template void sinkhorn_forward<T>(const T*, int, int, double, T*, T*);                       \
  template void sinkhorn_backward<T>(const T*, const T*, int, int, double, T*);                \
  template void hc_expand_embedding<T>(const T*, T*, int64_t, int, int);                       \
  template void hc_collapse<T>(const ModelConfig&, const HcP&, const T*, const T*, T*,         \
                               HcActs<T>&, int64_t, bool, bool);                               \
  template void hc_expand<T>(const ModelConfig&, const T*, T*, HcActs<T>&, int64_t, bool);     \
  template void hc_expand_backward<T>(const ModelConfig&, const HcActs<T>&, T*, T*, T*, T*,    \
                                      int64_t);                                                \
  template void hc_collapse_backward<T>(const ModelConfig&, const HcP&, const T*, T*,          \
                                        const HcActs<T>&, const T*, const T*, const T*, T*,    \
                                        int64_t);

AHA_INSTANTIATE_HC(float)
AHA_INSTANTIATE_HC(double)

}  // namespace aha::policy
