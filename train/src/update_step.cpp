// Gradient sync, ESFT mask, clipping, non-finite skips and the optimizer step of one update.
#include "aha/train/update_step.h"

#include <spdlog/spdlog.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <cmath>

#include "aha/core/error.h"
#include "aha/policy/esft.h"

namespace aha::train {

UpdateStep::UpdateStep(policy::Model<float>& model, policy::Optimizer<float>& opt,
                       double max_grad_norm, int max_nan_skips, runlog::RunDb* db)
    : model_(model),
      opt_(opt),
      max_grad_norm_(max_grad_norm),
      max_nan_skips_(max_nan_skips),
      db_(db),
      shards_(model) {
  ready_ = [this](size_t b, size_t e) {
    // Expert parallel: each rank's experts' gradients are complete where they are.
    if (!shards_.on()) return grad_sum_.start(model_.grads().data() + b, e - b);
    shards_.outside(b, e, [this](size_t x, size_t y) {
      grad_sum_.start(model_.grads().data() + x, y - x);
    });
  };
  // An unsharded expert-parallel model would need every rank's new expert weights sent to
  // every rank after each update; the trainers build their models sharded instead.
  AHA_CHECK(!shards_.on() || shards_.sharded(), "expert-parallel training of an unsharded model");
  if (shards_.on()) opt_.hold_only(shards_.held(model_.table()));
  if (model_.config().n_routed_experts > 0) log_memory();
}

void UpdateStep::log_memory() const {
  // What this rank allocates for the routed experts: weights, their gradients (grads() mirrors
  // params()) and AdamW moments. bench/mpi/expert_parallel.sh reads this line.
  double mine[3] = {0, 0, 0};
  for (size_t k = 0; k < model_.table().entries().size(); ++k) {
    const policy::ParamEntry& e = model_.table().entries()[k];
    if (e.name.find(".mlp.experts.") == std::string::npos) continue;
    const double bytes = double(e.numel) * sizeof(float);
    mine[0] += bytes;
    mine[1] += bytes;
    if (opt_.exp_avg(k) != nullptr) mine[2] += 2 * bytes;
  }
  const std::vector<double> all =
      dist::allgather({mine[0], mine[1], mine[2]}, "expert memory sizes");
  if (dist::rank() != 0) return;
  std::string list[3];
  for (size_t r = 0; r < all.size() / 3; ++r) {
    for (int i = 0; i < 3; ++i) {
      list[i] += fmt::format("{}{:.3f}", r > 0 ? "/" : "", all[3 * r + i] / 1e6);
    }
  }
  spdlog::info("routed experts per rank: weights {} MB, gradients {} MB, AdamW moments {} MB",
               list[0], list[1], list[2]);
}

void UpdateStep::set_trainable(std::vector<uint8_t> mask) {
  trainable_ = std::move(mask);
  policy::freeze_optimizer(opt_, model_.table(), trainable_);
}

void UpdateStep::begin() { model_.zero_grad(); }

const policy::Model<float>::GradsReady* UpdateStep::ready() {
  return dist::active() ? &ready_ : nullptr;
}

void UpdateStep::no_backward() {
  if (!dist::active()) return;
  for (auto [b, e] : model_.grad_ranges()) ready_(b, e);
}

void UpdateStep::wait() { grad_sum_.wait("gradient allreduce"); }

UpdateResult UpdateStep::apply(double loss, double lr, int64_t at_step, double grad_scale) {
  wait();
  float* grads = model_.grads().data();
  if (grad_scale != 1.0) {
    const float s = static_cast<float>(grad_scale);
    const int64_t n = static_cast<int64_t>(model_.grads().size());
    tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, 1 << 16),
                      [&](const tbb::blocked_range<int64_t>& r) {
                        for (int64_t i = r.begin(); i < r.end(); ++i) grads[i] *= s;
                      });
  }
  // ESFT: frozen tensors neither learn nor count in the gradient norm.
  if (!trainable_.empty()) policy::apply_mask(model_.table(), trainable_, grads);
  UpdateResult r;
  r.grad_norm = shards_.on() ? shards_.clip_grad_norm(model_.table(), grads, max_grad_norm_)
                             : policy::clip_grad_norm(model_.table(), grads, max_grad_norm_);
  if (std::isfinite(r.grad_norm) && std::isfinite(loss)) {
    nan_streak_ = 0;
    opt_.step(model_.params().data(), grads, lr);
    return r;
  }
  r.skipped = true;
  if (++nan_streak_ > max_nan_skips_) {
    fail("stopping: ", nan_streak_, " non-finite updates in a row at step ", at_step,
         " (learning rate ", lr, " too high?)");
  }
  const char* msg = "non-finite loss or gradient: update skipped";
  if (db_ != nullptr) {
    db_->event(at_step, "warn", "nan_skip", msg);
  } else {
    spdlog::warn("rank {}: nan_skip: {}", dist::rank(), msg);
  }
  return r;
}

}  // namespace aha::train
