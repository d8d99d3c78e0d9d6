// DeepSeek Sparse Attention's indexer loss over a whole model (DeepSeek-V3.2 §2.1): per DSA
// layer and query token, KL(p_t || softmax(I_t)) where p_t is the main attention's probability
// summed over heads and L1-normalised, I_t the lightning indexer's scores. The indexer's inputs
// are detached: the loss trains the indexer tensors only, and the main model's gradient never
// passes through the indexer.
#pragma once

#include "aha/policy/model.h"

namespace aha::policy {

// The loss of the forward in acts (kept activations), averaged over its tokens and summed over
// the DSA layers, over every causal key (kDense: the warm-up stage) or each query's selected
// keys (kSparse); adds weight * its gradient into m.grads(). 0 on models without DSA.
template <typename T>
double indexer_loss(Model<T>& m, const Activations<T>& acts, IndexerSupport support,
                    double weight);

}  // namespace aha::policy
