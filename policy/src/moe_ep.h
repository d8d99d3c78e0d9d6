// Expert parallelism inside one MoE layer: each token's row travels once to every rank holding
// some of its experts (one all-to-all of counts, one of rows and one of routes), the local
// experts run on what arrives, and each (token, expert) output travels back; backward sends
// each token's output gradient once per rank the same way and returns the (token, expert) input
// gradients. Internal to moe.cpp, as is the expert task both share.
#pragma once

#include <cstdint>
#include <vector>

#include "aha/core/tensor.h"
#include "aha/policy/moe.h"

namespace aha::policy {

// One expert's forward, a task of a loop over `tasks` experts (local or, here, expert-parallel):
// its products run as one BLAS call each where that loop feeds the cores (gemms_of_loop_task).
// Row-stable products (decode) keep their own split: their bits do not depend on it.
template <typename F>
void expert_forward_task(int64_t tasks, bool rowstable, F&& run) {
  if (rowstable) {
    run();
  } else {
    gemms_of_loop_task(tasks, run);
  }
}

// Fills a.out[e] for every expert e (this rank's rows, in a.slots[e] order) and, for the local
// experts, a.xin / a.expert_acts over every rank's rows; a.slots and a.ep must be set.
template <typename T>
void ep_experts_forward(const ModelConfig& c, const MoeP& p, const T* params, const T* x,
                        MoeActs<T>& a, bool rowstable);
// dxe[e] receives d loss / d (this rank's rows of expert e's input), in a.slots[e] order; the
// local experts' parameter gradients (over every rank's rows) are added into grads.
template <typename T>
void ep_experts_backward(const ModelConfig& c, const MoeP& p, const T* params, T* grads,
                         const T* dy, const MoeActs<T>& a, std::vector<ScratchBuf<T>>& dxe);

}  // namespace aha::policy
