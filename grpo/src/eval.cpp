// Sampling-based evaluation of a checkpoint.
#include "aha/grpo/eval.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <span>

#include "aha/core/error.h"
#include "aha/core/fileio.h"
#include "aha/datasets/prompt_template.h"
#include "aha/datasets/source.h"
#include "aha/policy/checkpoint.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"
#include "aha/rollout/engine.h"
#include "aha/runlog/run_db.h"

namespace aha::grpo {

namespace fs = std::filesystem;

bool warn_on_template_change(const std::string& model_dir, const std::string& templ) {
  const fs::path note = fs::path(model_dir) / "aha_data.json";
  if (!fs::exists(note)) return false;
  std::string recorded;
  try {
    recorded = load_json_file(note.string()).value("prompt_template", "");
  } catch (const Error&) {
    return false;  // an unreadable note is no reason to stop a run
  }
  const std::string used = datasets::PromptTemplate::text_of(templ);
  if (recorded.empty() || recorded == used) return false;
  spdlog::warn("data.template \"{}\" differs from the template the base was pretrained with "
               "(\"{}\", {}): rewards may stay 0", used, recorded, note.string());
  return true;
}

Json evaluate_model(const policy::Model<float>& model, const tokenizer::Tokenizer& tok,
                    const std::vector<datasets::Example>& problems, const EvalOptions& o,
                    std::vector<Rollout>* out_rows) {
  if (o.n < 1) fail("--n must be >= 1");
  if (problems.empty()) fail("evaluation: no problems");
  auto templ = datasets::PromptTemplate::from_config(o.templ);
  rewards::RewardSet own;
  if (o.reward_set == nullptr) own = rewards::RewardSet::from_json(o.rewards, rewards::builtin_registry());
  const rewards::RewardSet& rewards = o.reward_set != nullptr ? *o.reward_set : own;
  const std::string acc = o.accuracy_reward.empty() ? rewards.labels().front() : o.accuracy_reward;
  std::vector<rollout::Request> reqs;
  std::vector<std::string> prompts;
  for (const auto& p : problems) {
    prompts.push_back(templ.render_row(p.row));
    rollout::Request r;
    r.prompt = tok.encode(prompts.back(), true);
    r.n = o.n;
    r.params = o.sampling;
    r.params.stop_at_eos(tok.eos_id());
    r.text = prompts.back();
    reqs.push_back(std::move(r));
  }
  rollout::EngineOptions eo;
  eo.seed = o.seed;
  eo.max_batch = o.max_batch;
  auto known = [&](const std::vector<int32_t>& ids) { return tokenizer::known_ids(tok, ids); };
  eo.detokenize = [&](const std::vector<int32_t>& ids) { return tok.decode(known(ids)); };
  eo.episodes = o.episodes;
  if (eo.episodes.enabled()) {
    eo.episodes.tokenize = [&](const std::string& text) { return tok.encode(text, false); };
  }
  auto comps = rollout::Engine(model, eo).generate(reqs, o.on_progress);
  std::vector<std::string> texts(comps.size());
  std::vector<rewards::Sample> samples(comps.size());
  for (size_t i = 0; i < comps.size(); ++i) {
    texts[i] = tok.decode_utf8(known(comps[i].completion_ids), true);
    samples[i] = {prompts[comps[i].group], texts[i], &problems[comps[i].group].row,
                  static_cast<int64_t>(comps[i].completion_ids.size())};
  }
  auto scored = rewards.score_batch(samples);
  std::vector<int> correct(problems.size(), 0);
  std::map<std::string, double> sums;
  double len_sum = 0, truncated = 0, calls = 0, tool_errors = 0;
  std::vector<Rollout> rows;
  for (size_t i = 0; i < comps.size(); ++i) {
    // A tool that broke ends its episode with reward 0 and no credit.
    const bool broken = comps[i].finish_reason == "tool_error";
    if (broken) scored[i].reward = 0.0;
    tool_errors += broken;
    for (const Turn& t : comps[i].turns) calls += t.role == "tool";
    auto it = scored[i].rewards.find(acc);
    const int ok = !broken && it != scored[i].rewards.end() && it->second > 0.5;
    correct[comps[i].group] += ok;
    for (const auto& [label, v] : scored[i].rewards) sums[label] += v;
    len_sum += double(comps[i].completion_ids.size());
    truncated += comps[i].finish_reason == "length";
    Rollout row;
    row.prompt_id = problems[comps[i].group].id;
    row.group = comps[i].group;
    row.sample_index = comps[i].sample_index;
    row.prompt_text = prompts[comps[i].group];
    row.completion_text = texts[i];
    row.completion_ids = comps[i].completion_ids;
    row.loss_mask = comps[i].loss_mask;
    row.turns = comps[i].turns;
    for (Turn& t : row.turns) {  // valid UTF-8 for run.db, as the completion text
      const std::span<const int32_t> span(row.completion_ids.data() + t.begin, t.end - t.begin);
      t.text = tok.decode_utf8(known(std::vector<int32_t>(span.begin(), span.end())), true);
    }
    row.finish_reason = comps[i].finish_reason;
    row.reward = scored[i].reward;
    row.correct = ok;
    rows.push_back(std::move(row));
  }
  double pass1 = 0, passk = 0;
  for (int c : correct) {
    pass1 += double(c) / o.n;
    passk += c > 0;
  }
  const double np = double(problems.size()), ns = double(comps.size());
  Json result = {{"problems", problems.size()}, {"k", o.n}, {"pass@1", pass1 / np},
                 {"pass@" + std::to_string(o.n), passk / np},
                 {"completion_len_mean", len_sum / ns}, {"truncated", truncated / ns}};
  if (eo.episodes.enabled()) {
    result["tool_calls_mean"] = calls / ns;
    result["tool_errors"] = tool_errors / ns;
  }
  if (truncated / ns > o.warn_truncated) {
    spdlog::warn("{:.0f}% of completions hit max_new_tokens ({}): their answers may be cut off; "
                 "raise --max-new-tokens", 100 * truncated / ns, o.sampling.max_new_tokens);
  }
  Json per = Json::object();
  for (const auto& [label, s] : sums) per[label] = s / ns;
  result["rewards"] = per;
  if (!o.out_jsonl.empty()) {
    std::string out;
    for (size_t p = 0; p < problems.size(); ++p) {
      out += Json{{"id", problems[p].id}, {"question", problems[p].row.value("question", "")},
                  {"answer", problems[p].row.value("answer", Json())}, {"correct", correct[p]},
                  {"n", o.n}}.dump() + "\n";
    }
    write_file_atomic(o.out_jsonl, out);
  }
  if (out_rows != nullptr) *out_rows = std::move(rows);
  return result;
}

Json evaluate(const EvalOptions& o) {
  if (o.n < 1) fail("--n must be >= 1");
  auto tok = tokenizer::Tokenizer::load(o.model);
  auto model = policy::load_model<float>(o.model);
  warn_on_template_change(o.model, o.templ);
  auto problems = datasets::load_examples(o.data, o.data.contains("eval") ? "eval" : "train", o.seed);
  std::vector<Rollout> rows;
  Json result = evaluate_model(*model, tok, problems, o, &rows);
  if (!o.db_path.empty()) {
    runlog::RunDb db(o.db_path, "eval", Json{{"model", o.model}, {"data", o.data}, {"n", o.n}},
                     o.model, false);
    Json metrics = result;
    metrics["accuracy"] = result["pass@1"];
    db.write_step(0, metrics, rows, false);
    db.finish("finished");
  }
  return result;
}

}  // namespace aha::grpo
