// Asynchronous rollouts with bounded staleness (grpo.max_staleness = s > 0): a second thread
// samples and scores the groups of step j while the trainer works on earlier steps, with the
// weights after update max(start, j - 1 - s). Which weights sample which step is fixed in
// advance rather than left to timing, so an asynchronous run repeats bit for bit and resumes
// like a synchronous one; the price is that the sampler never uses weights fresher than s
// updates behind, even when they are ready.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/rollout.h"
#include "aha/grpo/rollouts.h"
#include "aha/policy/model.h"

namespace aha::grpo {

// One step's sampled and scored groups.
struct SampledBatch {
  int64_t step = 0;     // the step (1-based) that learns from it
  int64_t version = 0;  // updates the weights that sampled it had seen
  std::vector<Rollout> rollouts;
  Json metrics = Json::object();    // the sampling's step metrics (tokens_per_s, ...)
  std::vector<std::string> warnings;  // for run.db, which belongs to the trainer's thread
};

// A checkpoint's batches sampled ahead: every field the update reads survives (JSON numbers
// round-trip floats exactly).
Json batch_to_json(const SampledBatch& b);
SampledBatch batch_from_json(const Json& j, const RolloutLimits& limits);

class RolloutQueue {
 public:
  // Samples step `step` with `model` (whose weights are `version`); runs on the queue's thread.
  using SampleFn =
      std::function<SampledBatch(const policy::Model<float>& model, int64_t step, int64_t version)>;
  // sampler: a model of the policy's architecture, owned by the thread. start: completed steps
  // when the run (or resume) begins; queued: the batches a checkpoint had sampled ahead (steps
  // start + 1, ...); last_step: no batch past it is sampled.
  RolloutQueue(std::unique_ptr<policy::Model<float>> sampler, int staleness, int64_t start,
               int64_t last_step, std::vector<SampledBatch> queued, SampleFn fn);
  ~RolloutQueue();
  RolloutQueue(const RolloutQueue&) = delete;
  RolloutQueue& operator=(const RolloutQueue&) = delete;

  int64_t version_for(int64_t step) const;
  // The weights after `version` updates: call with each version in turn, before take(version + 1).
  void publish(int64_t version, const std::vector<float>& params);
  // The batch of step `step` (waits for it); rethrows what the sampler threw.
  SampledBatch take(int64_t step);
  // Waits until every step whose weights are published (up to last_step) is sampled, and
  // returns copies of those not taken: the in-flight part of a checkpoint. The sampler is then
  // idle until the next publish, so the data cursor it advances may be saved.
  std::vector<SampledBatch> pending();

 private:
  void run();
  bool can_sample() const;  // under mu_

  std::unique_ptr<policy::Model<float>> sampler_;
  const int staleness_;
  const int64_t start_, last_step_;
  SampleFn fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, std::shared_ptr<const std::vector<float>>> weights_;  // by version
  std::map<int64_t, SampledBatch> ready_;                                 // by step
  int64_t next_ = 0;       // the next step to sample
  int64_t published_ = -1; // the newest version published
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace aha::grpo
