// Logit distillation through the LM head: per position, a KL divergence between a teacher
// distribution given sparsely (its top-k token ids and their logprobs under the teacher's full
// softmax) and the student's softmax(h W^T), with its gradient w.r.t. h and W, chunked over
// positions so [n, vocab] logits never exist at once (the logprob_forward/backward pattern).
//
// The teacher's top-k ids are buckets; with `tail` the rest of the vocabulary is one more bucket
// holding the teacher's remaining mass 1 - sum(exp(logprobs)) and the student's mass outside the
// top-k. Without `tail` the teacher's top-k is renormalised and the student keeps its full
// softmax, so the loss is the cross-entropy against the renormalised top-k minus its entropy.
//   forward KL (SFT-like, mode covering):  sum_b p_b (log p_b - log q_b)
//   reverse KL (on-policy, mode seeking):  sum_b q_b (log q_b - log p_b)   (always with the tail)
// With k = vocab (every id given) both are the exact KL over the vocabulary.
#pragma once

#include <cstdint>
#include <vector>

namespace aha::distill {

enum class KlDirection { kForward, kReverse };

// Teacher targets for n_rows positions, CSR: row r owns entries [offsets[r], offsets[r + 1]).
struct SparseTargets {
  std::vector<int64_t> offsets = {0};  // [n_rows + 1]
  std::vector<int32_t> ids;            // token ids, distinct within a row
  std::vector<float> logprobs;         // teacher log p(id) under its full softmax
  std::vector<float> weight;           // [n_rows] the row's weight in the loss (0: skipped)
  int64_t n_rows() const { return static_cast<int64_t>(offsets.size()) - 1; }
  // Appends one row (ids and logprobs of equal length).
  void add_row(const int32_t* row_ids, const float* row_logprobs, int k, float row_weight);
};

struct KlOptions {
  KlDirection direction = KlDirection::kForward;
  bool tail = true;  // the rest-of-vocabulary bucket (forced on for kReverse)
};

// Returns sum_r weight[r] * KL_r over rows r of h [n_rows, dim] against targets; w is the LM
// head [vocab, dim]. When dh and dw are not null, ACCUMULATES the gradient of that sum into
// dh [n_rows, dim] and dw [vocab, dim]. kl_rows (optional, [n_rows]) receives each unweighted KL.
template <typename T>
double sparse_kl_forward_backward(const T* h, const T* w, const SparseTargets& targets,
                                  const KlOptions& opts, T* dh, T* dw, int dim, int vocab,
                                  T* kl_rows = nullptr);

// The teacher side: the k largest log-softmax entries of each row of logits [n_rows, vocab]
// (ties to the lower id), appended to `out` with the given row weights.
template <typename T>
void append_topk_logprobs(const T* logits, int64_t n_rows, int vocab, int k,
                          const float* row_weight, SparseTargets& out);

}  // namespace aha::distill
