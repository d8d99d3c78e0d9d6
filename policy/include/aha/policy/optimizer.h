// Optimizers over the model's contiguous parameter block: AdamW with decoupled weight decay,
// plain SGD, global-norm gradient clipping and learning-rate schedules. State (moments, step)
// saves to and restores from optimizer.safetensors exactly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"
#include "aha/policy/params.h"

namespace aha::policy {

struct OptimizerConfig {
  std::string kind = "adamw";  // adamw | sgd
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // decoupled; applied to matrices only, not to norms and biases
  double max_grad_norm = 1.0; // <= 0: no clipping
  static OptimizerConfig from_json(const Json& j);  // strict: unknown keys are errors
};

// lr(step) for step = 0, 1, ...: linear warmup over warmup_steps, then constant, cosine or
// linear decay to min_lr_ratio * lr at total_steps.
struct LrSchedule {
  std::string kind = "constant";  // constant | cosine | linear
  double lr = 1e-3;
  int warmup_steps = 0;
  int total_steps = 0;
  double min_lr_ratio = 0.0;
  double at(int64_t step) const;
  static LrSchedule from_json(const Json& j);
};

// L2 norm of the gradient over trainable tensors; scales it to max_norm when above (and > 0).
// Returns the norm before clipping (NaN/Inf when the gradient is not finite; then untouched).
template <typename T>
double clip_grad_norm(const ParamTable& table, T* grads, double max_norm);

// Not thread-safe; one instance per model.
template <typename T>
class Optimizer {
 public:
  Optimizer(const ParamTable& table, const OptimizerConfig& config);

  // Freezes (or unfreezes) a tensor: frozen tensors are never updated.
  void set_trainable(const std::string& name, bool trainable);
  bool trainable(size_t entry) const { return trainable_[entry] != 0; }
  // One update of params from grads with learning rate lr.
  void step(T* params, const T* grads, double lr);
  int64_t steps() const { return t_; }

  // Expert parallelism: entries with held[k] == 0 (another rank's experts) are frozen here and
  // keep no moments, which frees their memory. Call before load() and the first step.
  void hold_only(const std::vector<uint8_t>& held);
  // Entry k's AdamW moments (nullptr when this instance keeps none, or under SGD).
  const T* exp_avg(size_t k) const;
  const T* exp_avg_sq(size_t k) const;
  // Moments of entries this instance does not keep, written beside its own (what other ranks
  // hold, gathered for one complete file).
  struct Moments {
    size_t entry;
    const T *m, *v;
  };
  void save(const std::string& path, const std::vector<Moments>& others = {}) const;
  // Reads the moments of the entries this instance keeps (a file with more is fine).
  void load(const std::string& path);

 private:
  // One AdamW (m, v set) or SGD (m, v null) update of n values.
  void update(T* p, const T* g, T* m, T* v, size_t n, double lr, double wd, double bc1,
              double bc2) const;

  const ParamTable& table_;
  OptimizerConfig cfg_;
  std::vector<char> trainable_;
  // AdamW moments of the trainable entries only, packed: entry k's at moment_at_[k] (frozen
  // base weights under LoRA hold no state).
  std::vector<size_t> moment_at_;
  std::vector<T> m_, v_;
  int64_t t_ = 0;
};

}  // namespace aha::policy
