// parallel.ep of a training config: the routed experts of every MoE layer sharded over the
// ranks (expert parallelism), attention, dense layers and shared experts data parallel over the
// same ranks. Pretraining, distillation and GRPO (its rollouts and scoring too) allocate only
// each rank's experts (sharded; docs/scaling.md).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "aha/core/config.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"

namespace aha::train {

struct ParallelConfig {
  int ep = 1;  // 1: data parallel only; otherwise the number of ranks
  bool expert_parallel() const { return ep > 1; }
  // j: the config's "parallel" object (empty when absent); strict.
  static ParallelConfig from_json(const Json& j);
};

// The sharding a model of config c is built with under p (size 1: none), sharded: each rank
// allocates only its experts. An error naming parallel.ep when the ranks or c do not allow it.
policy::ExpertParallel expert_parallel_for(const ParallelConfig& p, const policy::ModelConfig& c,
                                           bool sharded);
// The same for the model in checkpoint directory `dir` (reads its config.json).
policy::ExpertParallel expert_parallel_for(const ParallelConfig& p, const std::string& dir,
                                           bool sharded);
// The device-level and communication balance losses (config.json) take their statistics over
// the whole batch, which only an expert-parallel forward reduces across ranks: an error naming
// the key when they are on under several data-parallel ranks without parallel.ep. (Call it
// where they weigh in the objective: GRPO only with grpo.aux_loss_weight > 0.)
void check_device_balance(const ParallelConfig& p, const policy::ModelConfig& c);

// Which values of an expert-parallel model are whose: the routed experts of every MoE layer in
// ep blocks, one per rank; everything else replicated. Rank r alone computes the gradient of its
// experts (its rows came from every rank), so expert gradients are never summed over ranks; its
// optimizer alone keeps their moments and updates them. Training needs a sharded model (no
// rank keeps a copy of another's experts, so nothing is sent after the update); an unsharded
// one with expert parallelism set (Model::set_expert_parallel) is for the policy tests only.
class ExpertShards {
 public:
  explicit ExpertShards(const policy::Model<float>& model);
  bool on() const { return size_ > 1; }
  bool sharded() const { return sharded_; }
  // Per table entry: 0 when it lies in another rank's experts.
  std::vector<uint8_t> held(const policy::ParamTable& table) const;
  // Calls f on the parts of [begin, end) outside the experts: what is summed over ranks.
  void outside(size_t begin, size_t end, const std::function<void(size_t, size_t)>& f) const;
  // policy::clip_grad_norm over all ranks: the replicated part (summed already) plus every
  // rank's own experts (one allreduce of a number). Returns the norm before clipping.
  double clip_grad_norm(const policy::ParamTable& table, float* grads, double max_norm) const;
  // For one complete optimizer file: rank 0 receives every other rank's expert moments
  // (moments points into data); other ranks get nothing. Every rank must call.
  struct Gathered {
    std::vector<float> data;
    std::vector<policy::Optimizer<float>::Moments> moments;
  };
  Gathered gather_moments(const policy::Optimizer<float>& opt,
                          const policy::ParamTable& table) const;

 private:
  // The entries of rank r's experts, in table order.
  std::vector<size_t> entries_of(const policy::ParamTable& table, int r) const;
  // Per MoE layer, the values of every expert held here: all of them, or (sharded) this rank's.
  std::vector<std::pair<size_t, size_t>> spans_;
  int rank_ = 0, size_ = 1;
  bool sharded_ = false;
};

}  // namespace aha::train
