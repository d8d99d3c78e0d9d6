// Expert parallelism inside one MoE layer: each token's row travels once to every rank holding
// some of its experts (one all-to-all of counts, one of rows and one of routes), the local
// experts run on what arrives, and each (token, expert) output travels back; backward sends
// each token's output gradient once per rank the same way and returns the (token, expert) input
// gradients. Internal to moe.cpp.
#pragma once

#include <vector>

#include "aha/policy/moe.h"

namespace aha::policy {

// Fills a.out[e] for every expert e (this rank's rows, in a.slots[e] order) and, for the local
// experts, a.xin / a.expert_acts over every rank's rows; a.slots and a.ep must be set.
template <typename T>
void ep_experts_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x,
                        MoeActs<T>& a, bool rowstable);
// dxe[e] receives d loss / d (this rank's rows of expert e's input), in a.slots[e] order; the
// local experts' parameter gradients (over every rank's rows) are added into grads.
template <typename T>
void ep_experts_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads,
                         const T* dy, const MoeActs<T>& a, std::vector<Buf<T>>& dxe);

}  // namespace aha::policy
