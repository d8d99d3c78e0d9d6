#include "rollout_queue.h"

#include <algorithm>
#include <cmath>

#include "aha/core/error.h"
#include "aha/grpo/rollouts.h"

namespace aha::grpo {

namespace {

// Observation tokens have no logprob (NaN), which JSON cannot hold: null.
Json floats_to_json(const std::vector<float>& v) {
  Json a = Json::array();
  for (float x : v) a.push_back(std::isnan(x) ? Json(nullptr) : Json(x));
  return a;
}

std::vector<float> floats_from_json(const Json& a) {
  std::vector<float> v;
  for (const Json& x : a) v.push_back(x.is_null() ? std::nanf("") : x.get<float>());
  return v;
}

}  // namespace

Json batch_to_json(const SampledBatch& b) {
  Json rs = Json::array();
  for (const Rollout& r : b.rollouts) {
    Json j = rollout_to_json(r);
    // What the rollout-file form leaves out: the sampler's own logprobs, and the routing as
    // recorded (its per-layer widths may differ, which routed_experts cannot say).
    j.erase("routed_experts");
    j["sampled_logprobs"] = floats_to_json(r.sampled_logprobs);
    j["sampling_dist_logprobs"] = floats_to_json(r.sampling_dist_logprobs);
    j["routing"] = r.routing;
    rs.push_back(std::move(j));
  }
  return {{"step", b.step}, {"version", b.version}, {"metrics", b.metrics},
          {"warnings", b.warnings}, {"rollouts", std::move(rs)}};
}

SampledBatch batch_from_json(const Json& j, const RolloutLimits& limits) {
  SampledBatch b;
  b.step = j.at("step").get<int64_t>();
  b.version = j.at("version").get<int64_t>();
  b.metrics = j.at("metrics");
  b.warnings = j.at("warnings").get<std::vector<std::string>>();
  RolloutLimits lim = limits;
  lim.logged_rows = true;  // an engine error may leave a rollout without tokens
  int64_t line = 0;
  for (Json r : j.at("rollouts")) {
    std::vector<float> sampled = floats_from_json(r.at("sampled_logprobs"));
    std::vector<float> dist = floats_from_json(r.at("sampling_dist_logprobs"));
    auto routing = r.at("routing").get<std::vector<std::vector<int32_t>>>();
    for (const char* k : {"sampled_logprobs", "sampling_dist_logprobs", "routing"}) r.erase(k);
    Rollout x = rollout_from_json(r, "the checkpoint's rollout queue", ++line, lim);
    x.sampled_logprobs = std::move(sampled);
    x.sampling_dist_logprobs = std::move(dist);
    x.routing = std::move(routing);
    b.rollouts.push_back(std::move(x));
  }
  return b;
}

RolloutQueue::RolloutQueue(std::unique_ptr<policy::Model<float>> sampler, int staleness,
                           int64_t start, int64_t last_step, std::vector<SampledBatch> queued,
                           SampleFn fn)
    : sampler_(std::move(sampler)),
      staleness_(staleness),
      start_(start),
      last_step_(last_step),
      fn_(std::move(fn)),
      next_(start + 1) {
  for (SampledBatch& b : queued) {
    if (b.step != next_) fail("the checkpoint's rollout queue skips step ", next_);
    ready_.emplace(b.step, std::move(b));
    ++next_;
  }
  thread_ = std::thread([this] { run(); });
}

RolloutQueue::~RolloutQueue() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  // A batch being sampled is finished first: the engine has no cancel point mid-batch.
  thread_.join();
}

int64_t RolloutQueue::version_for(int64_t step) const {
  return std::max(start_, step - 1 - staleness_);
}

bool RolloutQueue::can_sample() const {
  return next_ <= last_step_ && weights_.count(version_for(next_)) != 0;
}

void RolloutQueue::publish(int64_t version, const std::vector<float>& params) {
  // A sampler of another layout (adapters the trainer has and it lacks) would read the
  // weights at the wrong offsets.
  AHA_CHECK(params.size() == sampler_->params().size());
  std::lock_guard<std::mutex> lk(mu_);
  published_ = version;
  // Only versions some step still to be sampled will use are kept (at most staleness + 1).
  if (next_ <= last_step_ && version >= version_for(next_)) {
    weights_[version] = std::make_shared<const std::vector<float>>(params);
  }
  cv_.notify_all();
}

void RolloutQueue::run() {
  int64_t loaded = -1;
  for (;;) {
    int64_t step = 0, version = 0;
    std::shared_ptr<const std::vector<float>> w;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || can_sample(); });
      if (stop_) return;
      step = next_;
      version = version_for(step);
      w = weights_.at(version);
    }
    SampledBatch b;
    try {
      if (version != loaded) sampler_->params() = *w;
      loaded = version;
      b = fn_(*sampler_, step, version);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    b.step = step;
    b.version = version;
    std::lock_guard<std::mutex> lk(mu_);
    ready_.emplace(step, std::move(b));
    ++next_;
    if (next_ <= last_step_) {
      weights_.erase(weights_.begin(), weights_.lower_bound(version_for(next_)));
    } else {
      weights_.clear();
    }
    cv_.notify_all();
  }
}

SampledBatch RolloutQueue::take(int64_t step) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return error_ || ready_.count(step) != 0; });
  if (ready_.count(step) == 0) std::rethrow_exception(error_);
  SampledBatch b = std::move(ready_.at(step));
  ready_.erase(step);
  return b;
}

std::vector<SampledBatch> RolloutQueue::pending() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return error_ || !can_sample(); });
  if (error_) std::rethrow_exception(error_);
  std::vector<SampledBatch> out;
  for (const auto& [step, b] : ready_) out.push_back(b);
  return out;
}

}  // namespace aha::grpo
