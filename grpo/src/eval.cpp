// Sampling-based evaluation of a checkpoint.
#include "aha/grpo/eval.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "aha/core/error.h"
#include "aha/core/fileio.h"
#include "aha/datasets/prompt_template.h"
#include "aha/datasets/source.h"
#include "aha/policy/checkpoint.h"
#include "aha/tokenizer/chat_template.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/rewards/reward.h"
#include "aha/runlog/run_db.h"
#include "aha/train/sample_score.h"

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
  auto templ = datasets::PromptTemplate::from_config(
      o.templ, [&] { return tokenizer::chat_prompt_renderer(o.model, &tok, o.data); });
  rewards::RewardSet own;
  if (o.reward_set == nullptr) own = rewards::RewardSet::from_json(o.rewards, rewards::builtin_registry());
  const rewards::RewardSet& rewards = o.reward_set != nullptr ? *o.reward_set : own;
  const std::string acc = o.accuracy_reward.empty() ? rewards.labels().front() : o.accuracy_reward;
  std::vector<train::Prompt> prompts;
  for (const auto& p : problems) prompts.push_back({&p.row, p.id});
  train::SampleOptions so;
  so.n = o.n;
  so.sampling = o.sampling;
  so.engine.seed = o.seed;
  so.engine.max_batch = o.max_batch;
  so.engine.episodes = o.episodes;
  so.on_progress = o.on_progress;
  auto rows = train::sample_and_score(model, tok, templ, prompts, so, rewards, acc);
  std::vector<int> correct(problems.size(), 0);
  std::map<std::string, double> sums;
  double len_sum = 0, truncated = 0, calls = 0, tool_errors = 0;
  for (const Rollout& r : rows) {
    tool_errors += r.finish_reason == "tool_error";
    for (const Turn& t : r.turns) calls += t.role == "tool";
    correct[r.group] += r.correct == 1;
    for (const auto& [label, v, details] : r.reward_parts) sums[label] += v;
    len_sum += double(r.n());
    truncated += r.finish_reason == "length";
  }
  double pass1 = 0, passk = 0;
  for (int c : correct) {
    pass1 += double(c) / o.n;
    passk += c > 0;
  }
  const double np = double(problems.size()), ns = double(rows.size());
  Json result = {{"problems", problems.size()}, {"k", o.n}, {"pass@1", pass1 / np},
                 {"pass@" + std::to_string(o.n), passk / np},
                 {"completion_len_mean", len_sum / ns}, {"truncated", truncated / ns}};
  if (o.episodes.enabled()) {
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
