// The reward API the trainer calls: a RewardFunction scores one sample (prompt, completion,
// dataset row) and explains itself; a RewardRegistry builds rewards by name from JSON params;
// a RewardSet is a weighted sum with a per-reward breakdown and TBB batch scoring.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "aha/core/config.h"
#include "aha/core/rollout.h"

namespace aha::rewards {

// One completion to score. `row` holds the dataset fields (answer, tests, test, entry_point,
// ...); it may be null for rewards that look at the text only.
struct Sample {
  std::string_view prompt;
  std::string_view completion;
  const Json* row = nullptr;
  int64_t n_completion_tokens = -1;  // filled by the trainer when known; length rewards use it
  // Multi-turn episodes: the turns (assistant text, tool calls, tool results, environment
  // rewards); null for single-turn samples.
  const std::vector<Turn>* turns = nullptr;
};

// A score and why. A sample that cannot be judged scores 0 with details["reason"].
struct RewardResult {
  double score = 0.0;
  Json details = Json::object();
};

// A reward. score() must be thread-safe: the RewardSet calls it from TBB workers.
class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  virtual RewardResult score(const Sample& sample) const = 0;
};

using RewardFactory = std::function<std::unique_ptr<RewardFunction>(const Json& params)>;

// Name -> factory. Not thread-safe for add(); create() is const.
class RewardRegistry {
 public:
  void add(const std::string& name, RewardFactory factory);
  bool has(const std::string& name) const { return factories_.count(name) != 0; }
  // Throws aha::Error for an unknown name or bad params.
  std::unique_ptr<RewardFunction> create(const std::string& name, const Json& params) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, RewardFactory> factories_;
};

// The registry of every built-in reward: math, code, format, tag_count, language, length,
// cosine, repetition, plugin (shared library), command (external JSON-lines program).
RewardRegistry builtin_registry();

// The scores of one sample under a RewardSet.
struct ScoredSample {
  double reward = 0.0;                   // weighted sum
  std::map<std::string, double> rewards; // label -> unweighted score
  Json details = Json::object();         // label -> that reward's details
  // {"reward": x, "rewards": {..}, "details": {..}}
  Json to_json() const;
};

// A weighted sum of rewards. Thread-safe for scoring once built; non-copyable.
class RewardSet {
 public:
  RewardSet() = default;
  RewardSet(RewardSet&&) = default;
  RewardSet& operator=(RewardSet&&) = default;
  RewardSet(const RewardSet&) = delete;
  RewardSet& operator=(const RewardSet&) = delete;

  // spec: [{"name": "math", "weight": 1.0, "params": {...}, "label": "optional"}, ...]
  static RewardSet from_json(const Json& spec, const RewardRegistry& registry);

  void add(std::string label, std::unique_ptr<RewardFunction> reward, double weight = 1.0);
  size_t size() const { return entries_.size(); }
  std::vector<std::string> labels() const;

  // Never throws for a bad sample: a reward that throws scores 0 with the error as reason.
  ScoredSample score(const Sample& sample) const;
  // Scores samples in parallel in the TBB pool (n_threads <= 0: all); results in order.
  std::vector<ScoredSample> score_batch(const std::vector<Sample>& samples,
                                        int n_threads = 0) const;

 private:
  struct Entry {
    std::string label;
    double weight;
    std::unique_ptr<RewardFunction> reward;
  };
  std::vector<Entry> entries_;
};

}  // namespace aha::rewards
