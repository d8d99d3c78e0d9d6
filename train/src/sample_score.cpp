// The one sample-and-score pipeline (see sample_score.h).
#include "aha/train/sample_score.h"

#include <algorithm>
#include <cmath>

namespace aha::train {

namespace {

std::string decode_text(const tokenizer::Tokenizer& tok, std::span<const int32_t> ids) {
  return tok.decode_utf8(tokenizer::known_ids(tok, ids), true);
}

// Process supervision: the first reward whose details carry "steps" ([{"end": byte offset in
// the completion text, "reward": r}]) gives the step rewards; byte offsets become token ends
// through each token's decoded length.
void set_step_rewards(Rollout& r, const Json& details, const tokenizer::Tokenizer& tok) {
  for (const auto& [label, d] : details.items()) {
    if (!d.is_object() || !d.contains("steps") || !d["steps"].is_array()) continue;
    std::vector<int64_t> cum(r.completion_ids.size());
    int64_t bytes = 0;
    for (size_t i = 0; i < r.completion_ids.size(); ++i) {
      const int32_t id = r.completion_ids[i];
      bytes += static_cast<int64_t>(tok.decode(std::span<const int32_t>(&id, 1), true).size());
      cum[i] = bytes;
    }
    int64_t last = 0;
    for (const Json& st : d["steps"]) {
      if (!st.is_object() || !st.contains("end") || !st.contains("reward")) continue;
      const int64_t end_byte = st["end"].get<int64_t>();
      auto it = std::lower_bound(cum.begin(), cum.end(), end_byte);
      int64_t end = std::min<int64_t>(r.n(), (it - cum.begin()) + 1);
      if (end <= last) continue;  // two steps inside one token: the first one counts
      r.step_ends.push_back(end);
      r.step_rewards.push_back(st["reward"].get<double>());
      last = end;
    }
    return;
  }
}

}  // namespace

std::vector<Rollout> sample(const policy::Model<float>& model, const tokenizer::Tokenizer& tok,
                            const datasets::PromptTemplate& templ,
                            const std::vector<Prompt>& prompts, SampleOptions opts) {
  std::vector<rollout::Request> reqs;
  reqs.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    rollout::Request r;
    r.text = templ.render_row(*prompts[i].row);
    r.prompt = tok.encode(r.text, true);
    r.n = opts.n;
    r.params = opts.sampling;
    r.params.stop_at_eos(tok.eos_id());
    if (opts.first_stream >= 0) r.stream = opts.first_stream + static_cast<int64_t>(i);
    reqs.push_back(std::move(r));
  }
  use_tokenizer(opts.engine, tok);
  auto rs = rollout::Engine(model, opts.engine).generate(reqs, opts.on_progress);
  for (Rollout& r : rs) {
    const size_t p = static_cast<size_t>(r.group);  // the request's index
    r.prompt_id = prompts[p].id;
    r.prompt_text = reqs[p].text;
    decode_texts(r, tok);
  }
  return rs;
}

void score(std::span<Rollout> rs, const std::vector<const Json*>& rows,
           const rewards::RewardSet& rewards, const std::string& accuracy,
           const tokenizer::Tokenizer* steps_tok) {
  std::vector<rewards::Sample> samples(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    samples[i] = {rs[i].prompt_text, rs[i].completion_text, rows[i], rs[i].n(),
                  rs[i].turns.empty() ? nullptr : &rs[i].turns};
  }
  auto scored = rewards.score_batch(samples);
  for (size_t i = 0; i < rs.size(); ++i) {
    Rollout& r = rs[i];
    // A broken, hanging or hostile tool ends its episode with reward 0, whatever the text says.
    r.reward = r.finish_reason == "error"        ? std::nan("")
               : r.finish_reason == "tool_error" ? 0.0
                                                 : scored[i].reward;
    auto it = scored[i].rewards.find(accuracy);
    r.correct = it == scored[i].rewards.end() ? -1 : (it->second > 0.5 ? 1 : 0);
    if (r.finish_reason == "tool_error" && r.correct == 1) r.correct = 0;
    r.reward_parts.clear();
    for (const auto& [label, v] : scored[i].rewards) {
      r.reward_parts.emplace_back(label, v, scored[i].details.value(label, Json::object()));
    }
    if (steps_tok == nullptr) continue;
    if (!set_env_step_rewards(r)) set_step_rewards(r, scored[i].details, *steps_tok);
  }
}

std::vector<Rollout> sample_and_score(const policy::Model<float>& model,
                                      const tokenizer::Tokenizer& tok,
                                      const datasets::PromptTemplate& templ,
                                      const std::vector<Prompt>& prompts,
                                      const SampleOptions& opts,
                                      const rewards::RewardSet& rewards,
                                      const std::string& accuracy) {
  auto rs = sample(model, tok, templ, prompts, opts);
  std::vector<const Json*> rows(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) rows[i] = prompts[static_cast<size_t>(rs[i].group)].row;
  score(rs, rows, rewards, accuracy);
  return rs;
}

bool set_env_step_rewards(Rollout& r) {
  bool any = false;
  for (const Turn& t : r.turns) {
    if (!std::isfinite(t.reward) || t.begin <= 0) continue;  // a reset's reward credits no token
    if (!r.step_ends.empty() && r.step_ends.back() >= t.begin) {
      r.step_rewards.back() += t.reward;  // two steps with no policy token between them
    } else {
      r.step_ends.push_back(t.begin);
      r.step_rewards.push_back(t.reward);
    }
    any = true;
  }
  if (!any) return false;
  if (std::isfinite(r.reward)) {
    if (r.step_ends.back() == r.n()) {
      r.step_rewards.back() += r.reward;
    } else {
      r.step_ends.push_back(r.n());
      r.step_rewards.push_back(r.reward);
    }
  }
  return true;
}

void use_tokenizer(rollout::EngineOptions& eo, const tokenizer::Tokenizer& tok) {
  const tokenizer::Tokenizer* t = &tok;
  eo.detokenize = [t](const std::vector<int32_t>& ids) {
    return t->decode(tokenizer::known_ids(*t, ids));
  };
  if (eo.episodes.enabled()) {
    eo.episodes.tokenize = [t](const std::string& text) { return t->encode(text, false); };
  }
}

void decode_texts(Rollout& r, const tokenizer::Tokenizer& tok) {
  r.completion_text = decode_text(tok, r.completion_ids);
  for (Turn& turn : r.turns) {
    if (turn.end == turn.begin) continue;
    turn.text = decode_text(tok, std::span<const int32_t>(r.completion_ids.data() + turn.begin,
                                                          turn.end - turn.begin));
  }
}

}  // namespace aha::train
