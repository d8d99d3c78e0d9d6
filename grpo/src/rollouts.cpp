// The rollout file: reading with line-precise validation, and writing.
#include "aha/grpo/rollouts.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "aha/core/error.h"
#include "aha/runlog/run_db.h"

namespace aha::grpo {

namespace {

// Reading one line; every message names the file, the line and the field.
class LineReader {
 public:
  LineReader(const std::string& path, int64_t line, const Json& j) : path_(path), line_(line), j_(j) {}

  template <typename... A>
  [[noreturn]] void bad(const A&... what) const {
    fail(path_, ":", line_, ": ", what...);
  }

  const Json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  std::vector<int32_t> ids(const char* key, int vocab) const {
    const Json* a = find(key);
    if (a == nullptr) bad("missing \"", key, "\"");
    if (!a->is_array()) bad("\"", key, "\" must be an array of token ids");
    std::vector<int32_t> out;
    out.reserve(a->size());
    for (const Json& v : *a) {
      if (!v.is_number_integer()) bad("\"", key, "\" holds a non-integer");
      const int64_t id = v.get<int64_t>();
      if (id < 0 || id >= vocab) bad("\"", key, "\" holds id ", id, ", outside the vocabulary [0, ", vocab, ")");
      out.push_back(static_cast<int32_t>(id));
    }
    return out;
  }

  // Observation tokens (loss_mask 0) carry no logprob: null there, NaN in the record.
  std::vector<float> floats(const char* key, int64_t n, const std::vector<uint8_t>& mask) const {
    std::vector<float> out;
    const Json* a = find(key);
    if (a == nullptr) return out;
    if (!a->is_array()) bad("\"", key, "\" must be an array of numbers");
    if (static_cast<int64_t>(a->size()) != n) {
      bad("\"", key, "\" has ", a->size(), " values for ", n, " completion tokens");
    }
    for (const Json& v : *a) {
      if (v.is_null() && !mask.empty() && mask[out.size()] == 0) {
        out.push_back(std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      if (!v.is_number()) bad("\"", key, "\" holds a non-number");
      const double x = v.get<double>();
      if (!std::isfinite(x) || x > 1e-3) bad("\"", key, "\" holds ", x, ", not a log-probability");
      out.push_back(static_cast<float>(x));
    }
    return out;
  }

  double number(const char* key) const {
    const Json* v = find(key);
    if (v == nullptr || !v->is_number()) bad("\"", key, "\" must be a number");
    return v->get<double>();
  }

 private:
  std::string path_;
  int64_t line_;
  const Json& j_;
};

// routed_experts: [position][moe layer][k] -> [layer][position * K + k].
std::vector<std::vector<int32_t>> read_routing(const LineReader& r, const Json& a, int64_t positions,
                                               const RolloutLimits& lim) {
  if (lim.moe_layers == 0) r.bad("\"routed_experts\" given, but the model has no MoE layers");
  if (!a.is_array()) r.bad("\"routed_experts\" must be [position][layer][k]");
  // Engines differ on whether the last token's routing is included: accept both.
  const int64_t n = static_cast<int64_t>(a.size());
  if (n != positions && n != positions + 1) {
    r.bad("\"routed_experts\" has ", n, " positions; prompt + completion - 1 = ", positions);
  }
  const int K = lim.experts_per_tok;
  std::vector<std::vector<int32_t>> out(lim.moe_layers, std::vector<int32_t>(positions * K));
  for (int64_t p = 0; p < positions; ++p) {
    const Json& layers = a[p];
    if (!layers.is_array() || static_cast<int>(layers.size()) != lim.moe_layers) {
      r.bad("\"routed_experts\"[", p, "] must list ", lim.moe_layers, " MoE layers");
    }
    for (int l = 0; l < lim.moe_layers; ++l) {
      const Json& ks = layers[l];
      if (!ks.is_array() || static_cast<int>(ks.size()) != K) {
        r.bad("\"routed_experts\"[", p, "][", l, "] must hold ", K, " expert ids");
      }
      for (int k = 0; k < K; ++k) {
        if (!ks[k].is_number_integer()) r.bad("\"routed_experts\" holds a non-integer");
        const int64_t e = ks[k].get<int64_t>();
        if (e < 0 || e >= lim.experts) r.bad("\"routed_experts\" names expert ", e, " of ", lim.experts);
        out[l][p * K + k] = static_cast<int32_t>(e);
      }
    }
  }
  return out;
}

std::vector<std::vector<int32_t>> read_mask(const LineReader& r, const Json& a, int64_t n, int vocab) {
  if (!a.is_array() || static_cast<int64_t>(a.size()) != n) {
    r.bad("\"sampling_mask\" must hold one id list per completion token (", n, ")");
  }
  std::vector<std::vector<int32_t>> out(n);
  for (int64_t t = 0; t < n; ++t) {
    if (!a[t].is_array()) r.bad("\"sampling_mask\"[", t, "] must be an array of ids");
    for (const Json& v : a[t]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab) {
        r.bad("\"sampling_mask\"[", t, "] holds an id outside the vocabulary");
      }
      out[t].push_back(v.get<int32_t>());
    }
    std::sort(out[t].begin(), out[t].end());
    out[t].erase(std::unique(out[t].begin(), out[t].end()), out[t].end());
  }
  return out;
}

void read_steps(const LineReader& r, const Json& a, Rollout& x) {
  if (!a.is_array()) r.bad("\"step_rewards\" must be [[end_token, reward], ...]");
  int64_t last = 0;
  for (const Json& s : a) {
    if (!s.is_array() || s.size() != 2 || !s[0].is_number_integer() || !s[1].is_number()) {
      r.bad("\"step_rewards\" entries must be [end_token, reward]");
    }
    const int64_t end = s[0].get<int64_t>();
    if (end <= last || end > x.n()) r.bad("\"step_rewards\" ends must ascend within (0, ", x.n(), "]");
    last = end;
    x.step_ends.push_back(end);
    x.step_rewards.push_back(s[1].get<double>());
  }
}

void read_loss_mask(const LineReader& r, const Json& a, Rollout& x) {
  if (!a.is_array() || static_cast<int64_t>(a.size()) != x.n()) {
    r.bad("\"loss_mask\" must hold one 0 or 1 per completion token (", x.n(), ")");
  }
  for (const Json& v : a) {
    if (!v.is_number_integer() || (v.get<int>() != 0 && v.get<int>() != 1)) {
      r.bad("\"loss_mask\" holds a value other than 0 or 1");
    }
    x.loss_mask.push_back(static_cast<uint8_t>(v.get<int>()));
  }
}

void read_turns(const LineReader& r, const Json& a, Rollout& x) {
  if (!a.is_array()) r.bad("\"turns\" must be an array of {role, begin, end, ...}");
  int64_t last = 0;
  for (const Json& t : a) {
    if (!t.is_object() || !t.contains("role") || !t["role"].is_string() || !t.contains("begin") ||
        !t["begin"].is_number_integer() || !t.contains("end") || !t["end"].is_number_integer()) {
      r.bad("\"turns\" entries need \"role\", \"begin\" and \"end\"");
    }
    Turn u;
    u.role = t["role"].get<std::string>();
    u.begin = t["begin"].get<int64_t>();
    u.end = t["end"].get<int64_t>();
    if (u.role != "assistant" && u.role != "tool") r.bad("\"turns\" role must be assistant or tool");
    if (u.begin < last || u.end < u.begin || u.end > x.n()) {
      r.bad("\"turns\" spans must be in order within [0, ", x.n(), "]");
    }
    last = u.end;
    u.text = t.value("text", std::string());
    u.tool = t.value("tool", std::string());
    u.status = t.value("status", std::string());
    u.seconds = t.value("seconds", 0.0);
    if (const auto it = t.find("reward"); it != t.end() && it->is_number()) {
      u.reward = it->get<double>();
    }
    x.turns.push_back(std::move(u));
  }
}

// What the run log keeps besides the learning signal: the reward parts (values, and details
// when given), whether the answer was correct, the advantage used, whether it was learned from.
void read_logged(const LineReader& r, Rollout& x) {
  if (const Json* g = r.find("group"); g != nullptr) {
    if (!g->is_number_integer() || g->get<int64_t>() < 0) r.bad("\"group\" must be a group index");
    x.group = g->get<int64_t>();
  }
  if (const Json* c = r.find("correct"); c != nullptr) {
    if (!c->is_number_integer() || c->get<int>() < 0 || c->get<int>() > 1) {
      r.bad("\"correct\" must be 0 or 1");
    }
    x.correct = c->get<int>();
  }
  if (r.find("advantage_used") != nullptr) x.logged_advantage = r.number("advantage_used");
  if (const Json* l = r.find("learn"); l != nullptr) {
    if (!l->is_boolean()) r.bad("\"learn\" must be true or false");
    x.learn = l->get<bool>();
  }
  if (const Json* v = r.find("policy_version"); v != nullptr) {
    if (!v->is_number_integer() || v->get<int64_t>() < 0) {
      r.bad("\"policy_version\" must be a step count >= 0");
    }
    x.policy_version = v->get<int64_t>();
  }
  const Json* parts = r.find("rewards");
  if (parts == nullptr) return;
  if (!parts->is_object()) r.bad("\"rewards\" must map reward names to values");
  const Json* details = r.find("reward_details");
  if (details != nullptr && !details->is_object()) r.bad("\"reward_details\" must be an object");
  for (const auto& [name, value] : parts->items()) {
    if (!value.is_number() && !value.is_null()) r.bad("\"rewards\".", name, " must be a number");
    const double v = value.is_null() ? std::nan("") : value.get<double>();
    Json d = Json::object();
    if (details != nullptr && details->contains(name)) d = (*details)[name];
    x.reward_parts.emplace_back(name, v, std::move(d));
  }
}

Rollout read_line(const LineReader& r, const Json& j, const RolloutLimits& lim) {
  Rollout x;
  const Json* pid = r.find("prompt_id");
  if (pid == nullptr) r.bad("missing \"prompt_id\"");
  x.prompt_id = pid->is_string() ? pid->get<std::string>() : pid->dump();
  x.prompt_ids = r.ids("prompt_ids", lim.vocab);
  x.completion_ids = r.ids("completion_ids", lim.vocab);
  if (x.prompt_ids.empty() && !lim.logged_rows) r.bad("\"prompt_ids\" is empty");
  if (x.completion_ids.empty() && !lim.logged_rows) r.bad("\"completion_ids\" is empty");
  const int64_t total = static_cast<int64_t>(x.prompt_ids.size()) + x.n();
  if (lim.max_positions > 0 && total > lim.max_positions) {
    r.bad("prompt + completion = ", total, " tokens, longer than the model's context (", lim.max_positions, ")");
  }
  if (r.find("advantage") != nullptr) x.advantage = r.number("advantage");
  if (r.find("reward") != nullptr) {
    x.reward = r.number("reward");
  } else if (!x.advantage && !lim.logged_rows) {
    r.bad("missing \"reward\" (or \"advantage\")");
  }
  if (const Json* a = r.find("loss_mask"); a != nullptr) read_loss_mask(r, *a, x);
  x.old_logprobs = r.floats("old_logprobs", x.n(), x.loss_mask);
  x.ref_logprobs = r.floats("ref_logprobs", x.n(), x.loss_mask);
  if (const Json* a = r.find("turns"); a != nullptr) read_turns(r, *a, x);
  if (const Json* s = r.find("sample_index"); s != nullptr && s->is_number_integer()) {
    x.sample_index = s->get<int64_t>();
  }
  if (const Json* f = r.find("finish_reason"); f != nullptr) {
    if (!f->is_string()) r.bad("\"finish_reason\" must be a string");
    x.finish_reason = f->get<std::string>();
  }
  if (const Json* a = r.find("routed_experts"); a != nullptr) {
    x.routing = read_routing(r, *a, total - 1, lim);
  }
  if (const Json* a = r.find("sampling_mask"); a != nullptr) {
    x.kept_ids = read_mask(r, *a, x.n(), lim.vocab);
    for (int64_t t = 0; t < x.n(); ++t) {
      const auto& k = x.kept_ids[t];
      if (!k.empty() && !std::binary_search(k.begin(), k.end(), x.completion_ids[t])) {
        r.bad("\"sampling_mask\"[", t, "] does not contain the sampled token ", x.completion_ids[t]);
      }
    }
  }
  if (const Json* a = r.find("step_rewards"); a != nullptr) read_steps(r, *a, x);
  for (const char* k : {"prompt", "completion"}) {
    if (const Json* t = r.find(k); t != nullptr && t->is_string()) {
      (std::string(k) == "prompt" ? x.prompt_text : x.completion_text) = t->get<std::string>();
    }
  }
  read_logged(r, x);
  return x;
}

}  // namespace

RolloutLimits rollout_limits(const policy::ModelConfig& c, int64_t max_positions) {
  RolloutLimits lim;
  lim.vocab = c.vocab_size;
  lim.max_positions = max_positions;
  lim.experts = c.n_routed_experts;
  lim.experts_per_tok = c.num_experts_per_tok;
  for (int l = 0; l < c.num_hidden_layers; ++l) lim.moe_layers += c.is_moe_layer(l);
  return lim;
}

Rollout rollout_from_json(const Json& j, const std::string& where, int64_t line,
                          const RolloutLimits& lim) {
  static const std::vector<std::string> kKnown = {
      "prompt_id", "prompt_ids", "completion_ids", "reward", "old_logprobs", "ref_logprobs",
      "advantage", "routed_experts", "sampling_mask", "step_rewards", "finish_reason",
      "sample_index", "prompt", "completion", "rewards", "reward_details", "group", "correct",
      "advantage_used", "learn", "loss_mask", "turns", "policy_version"};
  if (!j.is_object()) fail(where, ":", line, ": each line must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (std::find(kKnown.begin(), kKnown.end(), k) == kKnown.end()) {
      fail(where, ":", line, ": unknown key \"", k, "\"");
    }
  }
  return read_line(LineReader(where, line, j), j, lim);
}

std::vector<Rollout> read_rollout_file(const std::string& path, const RolloutLimits& lim) {
  std::ifstream in(path);
  if (!in) fail("cannot open rollout file ", path);
  std::vector<Rollout> out;
  std::map<std::string, int64_t> group_of;
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Rollout x = rollout_from_json(parse_json(line, path + ":" + std::to_string(n)), path, n, lim);
    auto [it, fresh] = group_of.try_emplace(x.prompt_id, static_cast<int64_t>(group_of.size()));
    x.group = it->second;
    out.push_back(std::move(x));
  }
  if (out.empty()) fail(path, ": no rollouts");
  // A group of one has no baseline: its advantage must be given.
  std::vector<int64_t> size(group_of.size(), 0);
  for (const Rollout& x : out) ++size[x.group];
  for (const Rollout& x : out) {
    if (lim.advantage_needs_group && size[x.group] == 1 && !x.advantage) {
      fail(path, ": prompt_id \"", x.prompt_id, "\" has a single completion and no \"advantage\": "
           "a group-relative advantage needs at least 2 completions per prompt");
    }
  }
  return out;
}

Json rollout_to_json(const Rollout& x) {
  Json j = {{"prompt_id", x.prompt_id}, {"sample_index", x.sample_index},
            {"prompt_ids", x.prompt_ids}, {"completion_ids", x.completion_ids},
            {"finish_reason", x.finish_reason}};
  j["reward"] = std::isfinite(x.reward) ? Json(x.reward) : Json(nullptr);
  if (x.advantage) j["advantage"] = *x.advantage;
  // Observation tokens carry no logprob: null.
  auto logprobs = [&](const std::vector<float>& v) {
    Json a = Json::array();
    for (size_t t = 0; t < v.size(); ++t) {
      a.push_back(x.in_loss(static_cast<int64_t>(t)) ? Json(v[t]) : Json(nullptr));
    }
    return a;
  };
  if (!x.old_logprobs.empty()) j["old_logprobs"] = logprobs(x.old_logprobs);
  if (!x.ref_logprobs.empty()) j["ref_logprobs"] = logprobs(x.ref_logprobs);
  if (!x.loss_mask.empty()) j["loss_mask"] = x.loss_mask;
  if (!x.turns.empty()) {
    Json turns = Json::array();
    for (const Turn& t : x.turns) {
      Json u = {{"role", t.role}, {"begin", t.begin}, {"end", t.end}, {"text", t.text}};
      if (t.role == "tool") {
        u["tool"] = t.tool;
        u["status"] = t.status;
        u["seconds"] = t.seconds;
        if (std::isfinite(t.reward)) u["reward"] = t.reward;
      }
      turns.push_back(std::move(u));
    }
    j["turns"] = std::move(turns);
  }
  if (!x.routing.empty()) {
    const size_t K = x.routing[0].size() / std::max<size_t>(1, x.prompt_ids.size() + x.completion_ids.size() - 1);
    const size_t positions = K == 0 ? 0 : x.routing[0].size() / K;
    Json re = Json::array();
    for (size_t p = 0; p < positions; ++p) {
      Json layers = Json::array();
      for (const auto& l : x.routing) {
        layers.push_back(std::vector<int32_t>(l.begin() + p * K, l.begin() + (p + 1) * K));
      }
      re.push_back(std::move(layers));
    }
    j["routed_experts"] = std::move(re);
  }
  if (!x.kept_ids.empty()) j["sampling_mask"] = x.kept_ids;
  if (!x.step_ends.empty()) {
    Json s = Json::array();
    for (size_t i = 0; i < x.step_ends.size(); ++i) s.push_back({x.step_ends[i], x.step_rewards[i]});
    j["step_rewards"] = std::move(s);
  }
  if (!x.reward_parts.empty()) {
    Json parts = Json::object(), details = Json::object();
    for (const auto& [name, value, d] : x.reward_parts) {
      parts[name] = std::isfinite(value) ? Json(value) : Json(nullptr);
      if (!d.empty()) details[name] = d;
    }
    j["rewards"] = std::move(parts);
    if (!details.empty()) j["reward_details"] = std::move(details);
  }
  j["group"] = x.group;
  if (x.correct >= 0) j["correct"] = x.correct;
  if (std::isfinite(x.logged_advantage)) j["advantage_used"] = x.logged_advantage;
  if (!x.learn) j["learn"] = false;
  if (x.policy_version >= 0) j["policy_version"] = x.policy_version;
  if (!x.prompt_text.empty()) j["prompt"] = x.prompt_text;
  if (!x.completion_text.empty()) j["completion"] = x.completion_text;
  return j;
}

int64_t export_step(const std::string& db_path, int64_t step, bool with_text, std::ostream& out) {
  auto db = runlog::RunDb::open_readonly(db_path);
  auto rows = db->read_rollouts(step);
  if (rows.empty()) fail(db_path, " has no rollouts at step ", step);
  auto cfg = db->query("SELECT json_extract(config, '$.grpo.advantage') AS a FROM runs ORDER BY id DESC LIMIT 1");
  const bool process = !cfg.empty() && cfg[0]["a"].is_string() && cfg[0]["a"].get<std::string>() == "process";
  if (process) spdlog::warn("process supervision: per-token advantages are not logged; the file carries rewards only");
  int64_t written = 0, skipped = 0;
  for (Rollout& x : rows) {
    // Rows without a token record were not learned from (dynamic sampling, truncation mask,
    // engine errors) or were logged with grpo.log_tokens = false.
    if (x.completion_ids.empty()) {
      ++skipped;
      continue;
    }
    // The logged advantage is the one the update used, whatever the rest of the group was.
    if (!process && std::isfinite(x.logged_advantage)) x.advantage = x.logged_advantage;
    if (!with_text) {
      x.prompt_text.clear();
      x.completion_text.clear();
    }
    out << rollout_to_json(x).dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
    ++written;
  }
  if (written == 0) {
    fail("step ", step, " of ", db_path, " has no token-level records (logged with grpo.log_tokens = false?)");
  }
  spdlog::info("step {}: {} rollouts written, {} not learned from (skipped)", step, written, skipped);
  return written;
}

}  // namespace aha::grpo
