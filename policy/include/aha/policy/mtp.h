// DeepSeek-V3 multi-token prediction (one module, depth 1): from the main model's final hidden
// state h_i (after the final norm) and the next token's embedding, predict the token after
// next: a_i = [enorm(Emb'(t_{i+1})) ; hnorm(h_i)] (embedding half first, as in the released
// code and every loader, not the paper's equation), x = eh_proj(a), one ordinary decoder block
// over the shortened sequences, then shared_head.norm and shared_head.head give log p(t_{i+2}).
// Its tensors are model.layers.<num_hidden_layers>.* as DeepSeek publishes them; the module has
// its own embedding and head copies there.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "aha/policy/block.h"

namespace aha::policy {

template <typename T>
struct Activations;

struct MtpP {
  size_t embed = kNoParam, head = kNoParam;
  NormP enorm, hnorm, head_norm;
  LinearP eh_proj;  // [d, 2d]
  LayerP block;
};
// Registers the module's tensors under model.layers.<num_hidden_layers>.
MtpP add_mtp(ParamTable& t, const ModelConfig& c, const RopeTable& rope);

template <typename T>
struct MtpActs {
  SeqLayout layout;                 // every sequence one token shorter
  std::vector<int32_t> inputs;      // t_{i+1} per row
  std::vector<int32_t> targets;     // t_{i+2} per row, -1 past the end
  std::vector<int64_t> src;         // the main model's row i of each MTP row
  Buf<T> e_in, e_h, e_rstd, h_in, h_h, h_rstd, a, x_out, hn, hn_rstd, logprob, lse;
  LayerActs<T> la;
  int64_t count = 0;  // rows with a target
  double loss = 0;    // mean -log p(t_{i+2}) over them
};

// The MTP loss of a forward that kept its activations (acts.h_final, tokens, layout).
template <typename T>
double mtp_forward(const ModelConfig& c, const MtpP& p, const T* P, const Activations<T>& acts,
                   MtpActs<T>& m);
// Keeps in the loss only the MTP rows whose main-model row src[r] satisfies keep (SFT: rows
// whose token after next is a completion token); count and loss are recomputed.
template <typename T, typename Keep>
void mtp_keep_rows(MtpActs<T>& m, const Keep& keep) {
  double sum = 0;
  m.count = 0;
  for (size_t r = 0; r < m.targets.size(); ++r) {
    if (m.targets[r] < 0) continue;
    if (!keep(m.src[r])) {
      m.targets[r] = -1;
      continue;
    }
    sum -= double(m.logprob[r]);
    ++m.count;
  }
  m.loss = m.count > 0 ? sum / double(m.count) : 0.0;
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

// The module as the draft of speculative decoding: row r pairs token t_{j+1} (tokens[r]) with the
// main model's normed final hidden h_j (hidden [n, d]); enorm/hnorm, eh_proj and the block run
// over `step`'s caches (the module's own, position j per row) with the decode path's
// batch-invariant kernels. x [n, d] receives the block's output, before shared_head.
void mtp_decode(const ModelConfig& c, const MtpP& p, const float* P, const int32_t* tokens,
                const float* hidden, int64_t n, const DecodeStep& step, float* x);

}  // namespace aha::policy
