// The reward registry and the weighted RewardSet with TBB batch scoring.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <exception>

#include "aha/rewards/reward.h"
#include "builtin.h"

namespace aha::rewards {

void RewardRegistry::add(const std::string& name, RewardFactory factory) {
  factories_[name] = std::move(factory);
}

std::unique_ptr<RewardFunction> RewardRegistry::create(const std::string& name,
                                                       const Json& params) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
    fail("[rewards] unknown reward '", name, "' (known: ", known, ")");
  }
  if (!params.is_object()) fail("[rewards] params of '", name, "' must be a JSON object");
  return it->second(params);
}

std::vector<std::string> RewardRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : factories_) out.push_back(name);
  return out;
}

RewardRegistry builtin_registry() {
  RewardRegistry r;
  r.add("math", detail::make_math_reward);
  r.add("format", detail::make_format_reward);
  r.add("tag_count", detail::make_tag_count_reward);
  r.add("language", detail::make_language_reward);
  r.add("length", detail::make_length_reward);
  r.add("env", detail::make_env_reward);
  r.add("cosine", detail::make_cosine_reward);
  r.add("repetition", detail::make_repetition_reward);
  r.add("code", detail::make_code_reward);
  r.add("plugin", detail::make_plugin_reward);
  r.add("command", detail::make_command_reward);
  r.add("equations", detail::make_equations_reward);
  r.add("countdown", detail::make_countdown_reward);
  return r;
}

Json ScoredSample::to_json() const {
  Json out = Json::object();
  out["reward"] = reward;
  out["rewards"] = Json::object();
  for (const auto& [label, x] : rewards) out["rewards"][label] = x;
  out["details"] = details;
  return out;
}

RewardSet RewardSet::from_json(const Json& spec, const RewardRegistry& registry) {
  if (!spec.is_array() || spec.empty()) {
    fail("[rewards] the reward spec must be a non-empty JSON list of {\"name\", \"weight\", "
         "\"params\"}, got ", spec.dump());
  }
  RewardSet set;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (!spec[i].is_object()) fail("[rewards] entry ", i, " is not an object: ", spec[i].dump());
    StrictReader r(spec[i], "rewards[" + std::to_string(i) + "]");
    auto name = r.require<std::string>("name");
    double weight = r.get<double>("weight", 1.0);
    // a weight near the double's range turns the weighted sum into inf and the advantages into NaN
    if (!(std::abs(weight) <= 1e6)) {
      fail("[rewards] rewards[", i, "].weight must be a number of magnitude <= 1e6, got ", weight);
    }
    auto label = r.get<std::string>("label", name);
    Json params = r.has("params") ? r.child("params") : Json::object();
    r.finish();
    for (const auto& e : set.entries_) {
      if (e.label == label) fail("[rewards] duplicate label '", label, "' (set \"label\")");
    }
    set.add(label, registry.create(name, params), weight);
  }
  return set;
}

void RewardSet::add(std::string label, std::unique_ptr<RewardFunction> reward, double weight) {
  AHA_CHECK(reward != nullptr, "null reward '", label, "'");
  entries_.push_back(Entry{std::move(label), weight, std::move(reward)});
}

std::vector<std::string> RewardSet::labels() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.label);
  return out;
}

ScoredSample RewardSet::score(const Sample& sample) const {
  ScoredSample out;
  for (const auto& e : entries_) {
    RewardResult r;
    try {
      r = e.reward->score(sample);
    } catch (const std::exception& ex) {
      // the plugin boundary: a failing reward judges this sample 0, the run goes on
      r = detail::unjudged(ex.what());
    }
    if (!std::isfinite(r.score)) {
      r.details["reason"] = "non-finite score";
      r.score = 0.0;
    }
    out.reward += e.weight * r.score;
    out.rewards[e.label] = r.score;
    out.details[e.label] = std::move(r.details);
  }
  return out;
}

std::vector<ScoredSample> RewardSet::score_batch(const std::vector<Sample>& samples,
                                                 int n_threads) const {
  std::vector<ScoredSample> out(samples.size());
  tbb::task_arena arena(n_threads > 0 ? n_threads : tbb::task_arena::automatic);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, samples.size(), 1),
                      [&](const tbb::blocked_range<size_t>& range) {
                        for (size_t i = range.begin(); i < range.end(); ++i) {
                          out[i] = score(samples[i]);
                        }
                      });
  });
  return out;
}

}  // namespace aha::rewards
