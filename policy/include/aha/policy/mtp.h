// DeepSeek-V3 multi-token prediction: D sequential modules (num_nextn_predict_layers). Module 1
// reads the main model's final hidden state h_i (after the final norm) and the next token's
// embedding and predicts the token after next: a_i = [enorm(Emb'(t_{i+1})) ; hnorm(h_i)]
// (embedding half first, as in the released code and every loader, not the paper's equation),
// x = eh_proj(a), one ordinary decoder block over the shortened sequences, then shared_head.norm
// and shared_head.head give log p(t_{i+2}). Module k > 1 reads module k - 1's block output
// instead of h_i and the embedding of t_{i+k}, and predicts t_{i+k+1} (as vLLM chains them).
// Module k's tensors are model.layers.<num_hidden_layers + k - 1>.* as DeepSeek publishes them;
// each has its own embedding and head copies there.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "aha/policy/block.h"

namespace aha::policy {

template <typename T>
struct Activations;

struct MtpModuleP {
  size_t embed = kNoParam, head = kNoParam;
  NormP enorm, hnorm, head_norm;
  LinearP eh_proj;  // [d, 2d]
  LayerP block;
};
struct MtpP {
  std::vector<MtpModuleP> modules;  // depth 1 first
};
// Registers the modules' tensors under model.layers.<num_hidden_layers + k>.
MtpP add_mtp(ParamTable& t, const ModelConfig& c, const RopeTable& rope);

// The activations of module 1 and, for depth > 1, of the deeper modules in `deeper`.
template <typename T>
struct MtpActs {
  SeqLayout layout;                 // module k: every sequence k tokens shorter
  std::vector<int32_t> inputs;      // t_{i+k} per row
  std::vector<int32_t> targets;     // t_{i+k+1} per row, -1 past the end (or not kept)
  std::vector<int64_t> src;         // the row read as h: main row i (k = 1), else module k-1's
  std::vector<int64_t> main_row;    // the main model's row i of each row
  Buf<T> e_in, e_h, e_rstd, h_in, h_h, h_rstd, a, x_out, hn, hn_rstd, logprob, lse;
  LayerActs<T> la;
  std::vector<MtpActs<T>> deeper;   // modules 2..D (only in module 1's)
  int64_t count = 0;  // module 1's rows with a target: the normaliser of every depth
  double loss = 0;    // (1/D) sum over depths of -log p(target) over them, divided by count
};

// The MTP loss of a forward that kept its activations (acts.h_final, tokens, layout): as in
// DeepSeek-V3, (1/D) times the sum over depths of each depth's cross-entropy, every depth
// divided by the same count (module 1's rows with a target).
template <typename T>
double mtp_forward(const ModelConfig& c, const MtpP& p, const T* P, const Activations<T>& acts,
                   MtpActs<T>& m);
// Keeps in the loss only the rows whose target satisfies keep(row), row being the main-model
// row whose module-1 row has the same target (main row i + k - 1 for depth k; SFT: rows whose
// target is a completion token); count and loss are recomputed.
template <typename T, typename Keep>
void mtp_keep_rows(MtpActs<T>& m, const Keep& keep) {
  double sum = 0;
  const size_t depth = 1 + m.deeper.size();
  for (size_t k = 0; k < depth; ++k) {
    MtpActs<T>& mk = k == 0 ? m : m.deeper[k - 1];
    int64_t count = 0;
    for (size_t r = 0; r < mk.targets.size(); ++r) {
      if (mk.targets[r] < 0) continue;
      if (!keep(mk.main_row[r] + static_cast<int64_t>(k))) {
        mk.targets[r] = -1;
        continue;
      }
      sum -= double(mk.logprob[r]);
      ++count;
    }
    if (k == 0) m.count = count;
  }
  m.loss = m.count > 0 ? sum / double(m.count) / double(depth) : 0.0;
}

// Adds weight * d loss / d parameters into G and d (weight * loss) / d h_final into dh_final
// [n, d] (pass it to Model::backward as dh_final so the gradient reaches the trunk).
template <typename T>
void mtp_backward(const ModelConfig& c, const MtpP& p, const T* P, T* G, const MtpActs<T>& m,
                  double weight, T* dh_final);

// The MTP term of a fine-tuning loss over the rows whose main row satisfies keep: forward, keep,
// then the parameter gradients into G of weight * (kept rows) / global_rows, which is this rank's
// share of weight * (the mean over all ranks' global_rows rows). Returns d/d h_final for
// Model::backward; nll receives this rank's summed -log p(token after next).
template <typename T>
std::vector<T> mtp_term(const ModelConfig& c, const MtpP& p, const T* P, T* G,
                        const Activations<T>& acts, const std::function<bool(int64_t)>& keep,
                        double weight, double global_rows, double& nll);

// Module 1 as the draft of speculative decoding: row r pairs token t_{j+1} (tokens[r]) with the
// main model's normed final hidden h_j (hidden [n, d]); enorm/hnorm, eh_proj and the block run
// over `step`'s caches (the module's own, position j per row) with the decode path's
// batch-invariant kernels. x [n, d] receives the block's output, before shared_head.
void mtp_decode(const ModelConfig& c, const MtpModuleP& p, const float* P, const int32_t* tokens,
                const float* hidden, int64_t n, const DecodeStep& step, float* x);

}  // namespace aha::policy
