// Engram (DeepSeek, arXiv 2601.07372): hashed N-gram conditional memory added to the residual
// before attention in the configured layers. Each token's 2..N-grams of compressed token ids
// are hashed (multiplicative XOR, one prime modulus per head) into one embedding table; the
// looked-up rows e_t pass a context-aware gate against each residual stream, a shared value
// projection and a short dilated causal convolution:
//   alpha_s = sigmoid(ssqrt(<norm1_s(W_K^s e + b_K^s), norm2_s(X_s)> / sqrt(d))),
//   u_s = alpha_s (W_V e + b_V),   X_s += u_s + silu(conv(norm_s(u)))_s.
// The hashing reproduces deepseek-ai/Engram's demo bit for bit, including numpy's
// default_rng draws of the multipliers. Tensor names are the demo's modules under
// model.layers.L.engram.*.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "aha/policy/model_config.h"
#include "aha/policy/params.h"
#include "aha/policy/seq_layout.h"

namespace aha::policy {

// numpy's default_rng(seed): SeedSequence -> PCG64 (XSL-RR 128/64), bit-exact, with
// Generator.integers(low, high, dtype=int64) (Lemire's bounded draws; 32-bit ones when the range
// fits 32 bits). Only what the Engram hash needs.
class NumpyRng {
 public:
  explicit NumpyRng(uint64_t seed);
  uint64_t next_u64();
  uint32_t next_u32();  // numpy's PCG64 hands out the two halves of one 64-bit draw
  // Generator.integers(low, high, size, dtype=np.int64): values in [low, high).
  std::vector<int64_t> integers(int64_t low, int64_t high, int64_t size);

 private:
  unsigned __int128 state_ = 0, inc_ = 0;
  bool has_u32_ = false;
  uint32_t u32_ = 0;
};

// What hashing needs for one Engram layer, derived from the config alone.
struct EngramHash {
  int layer = 0;
  int max_ngram = 0, heads_per_ngram = 0;
  std::vector<int64_t> multipliers;  // [N] odd: 2 r + 1
  std::vector<int64_t> primes;       // [(N-1) * H] modulus of each (n, head), n-major
  std::vector<int64_t> offsets;      // [(N-1) * H] first table row of each head
  int64_t rows = 0;                  // table rows: the sum of the primes
  int64_t pad = 0;                   // compressed pad id
  std::shared_ptr<const std::vector<int32_t>> compression;  // empty: identity
  int64_t compress(int32_t id) const {
    return compression && !compression->empty() ? (*compression)[id] : id;
  }
};

// Distinct canonical ids of the compression table (vocab_size for the identity).
int64_t engram_compressed_vocab(const EngramConfig& g, int vocab_size);
// The demo's repeated next-prime search: per layer in layer_ids order, per n, per head, the
// smallest prime above the last one (starting at engram_vocab_size[n-2] - 1) not yet taken.
// [layer index in layer_ids][(N-1) * H].
std::vector<std::vector<int64_t>> engram_primes(const EngramConfig& g);
// Multipliers of one layer: 2 r + 1, r = default_rng(seed + 10007 layer).integers(0, half, N).
std::vector<int64_t> engram_multipliers(const EngramConfig& g, int vocab_size, int layer);
EngramHash make_engram_hash(const EngramConfig& g, int vocab_size, int layer);

// ngram_ids [n, N]: token t's id, then the ids of the N-1 tokens before it (-1 before the start
// of its sequence: the pad). idx [n, (N-1) * H]: each head's hash in [0, prime) (no offset).
void engram_hash_indices(const EngramHash& h, const int32_t* ngram_ids, int64_t n, int64_t* idx);
// ngram_ids [n, N] of a packed batch.
std::vector<int32_t> engram_ngram_ids(const int32_t* tokens, const SeqLayout& layout, int N);

// Offsets of one layer's tensors (model.layers.L.engram.*). m streams (hc_mult or 1).
struct EngramP {
  size_t table = kNoParam;  // multi_head_embedding.embedding.weight [rows, head_dim], sparse rows
  size_t value_w = kNoParam, value_b = kNoParam;  // value_proj [d, width], [d]
  std::vector<size_t> key_w, key_b;               // key_projs.s [d, width], [d]
  std::vector<size_t> norm1, norm2, conv_norm;    // norm1.s, norm2.s, short_conv.norms.s [d]
  size_t conv_w = kNoParam;                       // short_conv.conv.weight [m d, 1, kernel]
  std::shared_ptr<const EngramHash> hash;
  int streams = 0;
  bool table_frozen = false;  // engram.freeze_table: no table gradient is computed
  bool on() const { return hash != nullptr; }
};
EngramP add_engram(ParamTable& t, const std::string& prefix, const ModelConfig& c, int layer);

template <typename T>
struct EngramActs {
  std::vector<int64_t> rows;  // [n, heads] table rows looked up (offsets added)
  Buf<T> e;                   // [n, width] concatenated rows
  // Per-stream tensors are stream-major: [m][n, d] and [m][n].
  Buf<T> x_in;          // [n, m d] the streams that came in
  Buf<T> k, kn, krstd;  // keys, normed keys, their 1/rms
  Buf<T> qn, qrstd;     // normed streams, their 1/rms
  Buf<T> gate;          // [m][n] g before the signed square root
  Buf<T> alpha;         // [m][n]
  Buf<T> v;             // [n, d]
  Buf<T> u, z, zrstd;   // gated values, their conv norm, its 1/rms
  Buf<T> c;             // conv output before SiLU
};

// How a pass feeds the short convolution's history (the causal taps reach (kernel - 1) N tokens
// back). Training and prefill: the packed sequences (layout). Decode (one row per sequence):
// history[b] holds that sequence's last (kernel - 1) N normed conv inputs [.., m d], oldest
// first, and is advanced in place. Prefill of one sequence: history_out receives its last ones.
struct EngramState {
  float* const* history = nullptr;
  float* history_out = nullptr;
};
// Rows of conv history one layer keeps per sequence, and their width.
int64_t engram_history_rows(const ModelConfig& c);

// X [n, m d] += Engram(X, ids). keep: store what backward needs. rowstable: batch-invariant
// projections (decode).
template <typename T>
void engram_forward(const ModelConfig& c, const EngramP& p, const T* P, const int32_t* ngram_ids,
                    T* X, EngramActs<T>& a, const SeqLayout& layout, const EngramState& state,
                    bool rowstable);
// dX [n, m d]: d loss / d output in, d loss / d input out (the residual path included);
// parameter gradients (the table's only in the looked-up rows) are added into G.
template <typename T>
void engram_backward(const ModelConfig& c, const EngramP& p, const T* P, T* G,
                     const EngramActs<T>& a, const SeqLayout& layout, T* dX);

}  // namespace aha::policy
