// The MoE balance losses and their gradients w.r.t. the router logits: DeepSeek-V3's
// sequence-wise expert-level loss, and DeepSeek-V2's device-level and communication losses
// (2.2.2, 2.2.3) over the n_devices contiguous expert blocks. Internal to moe.cpp.
#pragma once

#include <cstdint>

#include "aha/policy/moe.h"

namespace aha::policy {

// Sequence-wise balance loss: mean over sequences of sum_i f_i * P_i.
template <typename T>
double balance_loss(const ModelConfig& c, const SeqLayout& layout, const MoeActs<T>& a);
// Adds coef * d(balance loss) / d router logits into dlogits [n, E].
template <typename T>
void balance_loss_grad(const ModelConfig& c, const SeqLayout& layout, const MoeActs<T>& a,
                       double coef, T* dlogits);

// Sets a.device_loss, a.comm_loss and a.device_score_grad from the n routed tokens in a; under
// expert parallelism (a.ep on) the statistics are summed over the ranks first, so every rank
// must call, in the same layer order, with any n (zero included). Off: clears them, no exchange.
template <typename T>
void device_balance_forward(const ModelConfig& c, int64_t n, MoeActs<T>& a);
// Adds weight * a.device_score_grad, through each token's score normalisation, into dlogits.
template <typename T>
void device_balance_grad(const ModelConfig& c, int64_t n, const MoeActs<T>& a, double weight,
                         T* dlogits);

}  // namespace aha::policy
