// Gradient sync, ESFT mask, clipping, non-finite skips and the optimizer step of one update.
#include "aha/train/update_step.h"

#include <spdlog/spdlog.h>

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
  if (shards_.on()) {
    opt_.hold_only(shards_.held(model_.table()));
    log_optimizer_state();
  }
}

void UpdateStep::log_optimizer_state() const {
  double mine = 0, all = 0;  // AdamW moment bytes here, and on a rank that held every expert
  for (size_t k = 0; k < model_.table().entries().size(); ++k) {
    const policy::ParamEntry& e = model_.table().entries()[k];
    if (!e.trainable) continue;
    const double bytes = 2.0 * double(e.numel) * sizeof(float);
    all += bytes;
    if (opt_.exp_avg(k) != nullptr) mine += bytes;
  }
  const std::vector<double> per_rank = dist::allgather({mine}, "optimizer state sizes");
  if (dist::rank() != 0 || mine == 0) return;  // SGD: no moments
  std::string list;
  for (double b : per_rank) {
    if (!list.empty()) list += '/';
    list += std::to_string(int64_t(b / 1e6));
  }
  spdlog::info("expert parallel over {} ranks: AdamW moments {} MB per rank ({} MB unsharded)",
               per_rank.size(), list, int64_t(all / 1e6));
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

UpdateResult UpdateStep::apply(double loss, double lr, int64_t at_step) {
  wait();
  float* grads = model_.grads().data();
  // ESFT: frozen tensors neither learn nor count in the gradient norm.
  if (!trainable_.empty()) policy::apply_mask(model_.table(), trainable_, grads);
  UpdateResult r;
  r.grad_norm = shards_.on() ? shards_.clip_grad_norm(model_.table(), grads, max_grad_norm_)
                             : policy::clip_grad_norm(model_.table(), grads, max_grad_norm_);
  if (std::isfinite(r.grad_norm) && std::isfinite(loss)) {
    nan_streak_ = 0;
    opt_.step(model_.params().data(), grads, lr);
    if (shards_.on()) shards_.sync_weights(model_.params().data());
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
