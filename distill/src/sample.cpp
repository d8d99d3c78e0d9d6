// Rejection sampling from a teacher into an SFT JSONL: generation, reward and readability
// filters with counts, dedup, teacher top-k logprobs, resumable chunked output.
#include "aha/distill/sample.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "aha/core/error.h"
#include "aha/core/threading.h"
#include "aha/datasets/source.h"
#include "aha/tokenizer/chat_template.h"
#include "aha/distill/common.h"
#include "aha/policy/checkpoint.h"
#include "aha/distill/kd_loss.h"
#include "aha/rewards/text_rewards.h"
#include "aha/train/sample_score.h"

namespace aha::distill {

namespace fs = std::filesystem;

FilterConfig FilterConfig::from_json(const Json& j) {
  StrictReader r(j, "filters");
  FilterConfig f;
  f.max_completion_tokens = r.get<int>("max_completion_tokens", f.max_completion_tokens);
  f.language = r.get<std::string>("language", f.language);
  f.min_language_share = r.get<double>("min_language_share", f.min_language_share);
  f.balanced_tags = r.get<bool>("balanced_tags", f.balanced_tags);
  r.finish();
  if (!f.language.empty()) rewards::parse_script(f.language);  // a typo fails before any work
  if (f.max_completion_tokens < 0) fail("filters.max_completion_tokens must be >= 0");
  return f;
}

SampleConfig SampleConfig::from_json(const Json& j) {
  StrictReader r(j, "config");
  SampleConfig c;
  c.teacher = r.require<std::string>("teacher");
  c.output = r.require<std::string>("output");
  c.seed = r.get<uint64_t>("seed", 0);
  c.data = r.child("data");
  c.rewards = r.get<Json>("rewards", Json::array({Json{{"name", "math"}, {"weight", 1.0}},
                                                  Json{{"name", "format"}, {"weight", 1.0}}}));
  c.accuracy_reward = r.get<std::string>("accuracy_reward", "");
  c.samples_per_prompt = r.get<int>("samples_per_prompt", c.samples_per_prompt);
  c.store_topk = r.get<int>("store_topk", c.store_topk);
  c.prompts_per_chunk = r.get<int>("prompts_per_chunk", c.prompts_per_chunk);
  c.max_batch = r.get<int>("max_batch", c.max_batch);
  c.threads = r.get<int>("threads", c.threads);
  Json sampling = r.child("sampling");
  Json filters = r.child("filters");
  r.finish();
  c.sampling = rollout::SamplingParams::from_json(sampling);
  c.filters = FilterConfig::from_json(filters);
  StrictReader d(c.data, "data");
  if (!d.has("train")) fail("data.train is required (a JSONL path or synthetic:addition)");
  for (const std::string& k : prompt_data_keys()) d.get<Json>(k, Json());
  d.finish();
  if (c.samples_per_prompt < 1 || c.prompts_per_chunk < 1 || c.max_batch < 1) {
    fail("samples_per_prompt, prompts_per_chunk and max_batch must be >= 1");
  }
  if (c.store_topk < 0) fail("store_topk must be >= 0");
  if (!c.rewards.is_array() || c.rewards.empty()) fail("rewards must be a non-empty array");
  return c;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kKept:
      return "kept";
    case Verdict::kError:
      return "error";
    case Verdict::kWrong:
      return "wrong";
    case Verdict::kOverlong:
      return "overlong";
    case Verdict::kMixedLanguage:
      return "mixed_language";
    case Verdict::kUnbalancedTags:
      return "unbalanced_tags";
    case Verdict::kDuplicate:
      return "duplicate";
  }
  return "?";
}

bool tags_balanced(const std::string& text) {
  static constexpr const char* kTags[] = {"think", "answer"};
  for (const char* name : kTags) {
    const std::string open = std::string("<") + name + ">", close = std::string("</") + name + ">";
    size_t n_open = 0, n_close = 0, first_open = std::string::npos, first_close = std::string::npos;
    for (size_t p = text.find(open); p != std::string::npos; p = text.find(open, p + 1)) {
      if (n_open++ == 0) first_open = p;
    }
    for (size_t p = text.find(close); p != std::string::npos; p = text.find(close, p + 1)) {
      if (n_close++ == 0) first_close = p;
    }
    if (n_open > 1 || n_close > 1 || n_open != n_close) return false;
    if (n_open == 1 && first_close < first_open) return false;
  }
  return true;
}

Verdict readability(const FilterConfig& f, int max_new_tokens, const std::string& completion,
                    int64_t n_tokens, const std::string& finish_reason) {
  const int64_t limit = f.max_completion_tokens > 0 ? f.max_completion_tokens : max_new_tokens;
  if (finish_reason == "length" || n_tokens > limit) return Verdict::kOverlong;
  if (!f.language.empty()) {
    std::string_view cot = rewards::chain_of_thought(completion);
    // Digits and symbols only (arithmetic): no letters, no language to judge.
    bool letters = false;
    for (unsigned char ch : cot) letters |= std::isalpha(ch) != 0 || ch >= 0x80;
    if (letters &&
        rewards::script_share(cot, rewards::parse_script(f.language)) < f.min_language_share) {
      return Verdict::kMixedLanguage;
    }
  }
  if (f.balanced_tags && !tags_balanced(completion)) return Verdict::kUnbalancedTags;
  return Verdict::kKept;
}

Json SampleStats::to_json() const {
  return Json{{"prompts", prompts}, {"generated", generated}, {"counts", counts}};
}

SampleStats SampleStats::from_json(const Json& j) {
  SampleStats s;
  s.prompts = j.value("prompts", int64_t{0});
  s.generated = j.value("generated", int64_t{0});
  s.counts = j.value("counts", std::map<std::string, int64_t>{});
  return s;
}

namespace {

struct Resume {
  std::unordered_set<std::string> done_prompts, hashes;
  SampleStats stats;
};

// What an earlier run left: the hashes of written rows, the prompts finished, the counts.
Resume read_previous(const SampleConfig& cfg) {
  Resume r;
  if (fs::exists(cfg.output)) {
    std::ifstream in(cfg.output);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        r.hashes.insert(parse_json(line, "resume").at("hash").get<std::string>());
      } catch (const std::exception&) {
        // A line cut by a crash mid-write: its prompt is not in .done, so it is redone.
      }
    }
  }
  std::ifstream done(cfg.output + ".done");
  for (std::string id; std::getline(done, id);) {
    if (!id.empty()) r.done_prompts.insert(id);
  }
  if (fs::exists(cfg.output + ".stats.json")) {
    r.stats = SampleStats::from_json(load_json_file(cfg.output + ".stats.json"));
  }
  return r;
}

// Teacher top-k logprobs at every completion position of prompt + completion.
Json teacher_topk(const policy::Model<float>& teacher, const std::vector<int32_t>& prompt,
                  const std::vector<int32_t>& completion, int k) {
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), completion.begin(), completion.end());
  policy::Batch b = policy::Batch::from_sequences({seq});
  policy::ForwardOptions fo;
  fo.keep_activations = false;
  policy::Activations<float> acts;
  teacher.forward(b, fo, acts);
  const int d = teacher.config().hidden_size, V = teacher.config().vocab_size;
  const int64_t n = static_cast<int64_t>(completion.size()),
                row0 = static_cast<int64_t>(prompt.size()) - 1;
  std::vector<float> logits(n * V);
  policy::logits_forward(acts.h_final.data() + row0 * d,
                         teacher.params().data() + teacher.lm_head_offset(), logits.data(), n, d,
                         V);
  SparseTargets tg;
  append_topk_logprobs(logits.data(), n, V, std::min(k, V), nullptr, tg);
  Json ids = Json::array(), lps = Json::array();
  for (int64_t r = 0; r < n; ++r) {
    ids.push_back(
        std::vector<int32_t>(tg.ids.begin() + tg.offsets[r], tg.ids.begin() + tg.offsets[r + 1]));
    Json row = Json::array();
    for (int64_t i = tg.offsets[r]; i < tg.offsets[r + 1]; ++i) {
      row.push_back(std::round(double(tg.logprobs[i]) * 1e5) / 1e5);  // 5 decimals keep files small
    }
    lps.push_back(std::move(row));
  }
  return Json{{"ids", std::move(ids)}, {"logprobs", std::move(lps)}};
}

// What one chunk of prompts needs; built once per run.
struct ChunkContext {
  const SampleConfig& cfg;
  const tokenizer::Tokenizer& tok;
  const policy::Model<float>& teacher;
  const std::vector<datasets::Example>& examples;
  const datasets::PromptTemplate& templ;
  const rewards::RewardSet& rset;
  const std::string& label;
};

// Generates the completions of the prompts `chunk` (indices into examples), judges each, counts
// the verdicts into stats and returns the kept rows as JSONL.
std::string sample_chunk(const ChunkContext& ctx, const std::vector<size_t>& chunk,
                         SampleStats& stats, std::unordered_set<std::string>& hashes) {
  const SampleConfig& cfg = ctx.cfg;
  std::vector<train::Prompt> prompts;
  for (size_t i : chunk) prompts.push_back({&ctx.examples[i].row, ctx.examples[i].id});
  train::SampleOptions so;
  so.n = cfg.samples_per_prompt;
  so.sampling = cfg.sampling;
  // Seeded by the prompt chunk's first index in the full list: a resumed run samples alike.
  so.engine.seed = cfg.seed * 1000003ULL + chunk[0];
  so.engine.max_batch = cfg.max_batch;
  auto comps = train::sample_and_score(ctx.teacher, ctx.tok, ctx.templ, prompts, so, ctx.rset,
                                       ctx.label);
  std::string block;
  for (const Rollout& c : comps) {
    Verdict v = Verdict::kKept;
    if (c.finish_reason == "error" || c.completion_ids.empty()) {
      v = Verdict::kError;
    } else if (c.correct != 1) {
      v = Verdict::kWrong;
    } else {
      v = readability(cfg.filters, cfg.sampling.max_new_tokens, c.completion_text, c.n(),
                      c.finish_reason);
    }
    const std::string hash = sample_hash(c.prompt_text, c.completion_text);
    if (v == Verdict::kKept && !hashes.insert(hash).second) v = Verdict::kDuplicate;
    ++stats.generated;
    ++stats.counts[verdict_name(v)];
    if (v != Verdict::kKept) continue;
    const auto& ex = ctx.examples[chunk[static_cast<size_t>(c.group)]];
    Json row = {{"prompt", c.prompt_text},
                {"completion", c.completion_text},
                {"source", cfg.teacher},
                {"reward", c.reward},
                {"prompt_id", ex.id},
                {"hash", hash},
                {"question", ex.row.value("question", "")},
                {"answer", ex.row.value("answer", Json())},
                {"completion_ids", c.completion_ids}};
    if (cfg.store_topk > 0)
      row["topk"] = teacher_topk(ctx.teacher, c.prompt_ids, c.completion_ids, cfg.store_topk);
    block += row.dump() + "\n";
  }
  return block;
}

}  // namespace

SampleStats run_sample(const SampleConfig& cfg,
                       const std::function<void(const SampleStats&, int64_t)>& on_chunk) {
  ThreadLimit limit(cfg.threads);
  auto tok = tokenizer::Tokenizer::load(cfg.teacher);
  auto teacher = policy::load_model<float>(cfg.teacher);
  auto examples = datasets::load_examples(cfg.data, "train", cfg.seed);
  auto templ = datasets::PromptTemplate::from_config(
      cfg.data.value("template", "r1_zero"),
      [&] { return tokenizer::chat_prompt_renderer(cfg.teacher, &tok, cfg.data); });
  auto rset = rewards::RewardSet::from_json(cfg.rewards, rewards::builtin_registry());
  const std::string label =
      cfg.accuracy_reward.empty() ? rset.labels().front() : cfg.accuracy_reward;
  auto labels = rset.labels();
  if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
    fail("accuracy_reward '", label, "' is not one of the configured rewards");
  }
  if (fs::path(cfg.output).has_parent_path())
    fs::create_directories(fs::path(cfg.output).parent_path());
  Resume prev = read_previous(cfg);
  SampleStats stats = prev.stats;
  std::vector<size_t> todo;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!prev.done_prompts.count(examples[i].id)) todo.push_back(i);
  }
  if (!prev.done_prompts.empty()) {
    spdlog::info("resuming: {} prompts done, {} to go", prev.done_prompts.size(), todo.size());
  }
  std::ofstream out(cfg.output, std::ios::app), done(cfg.output + ".done", std::ios::app);
  if (!out || !done) fail("cannot append to ", cfg.output, ": ", std::strerror(errno));
  const ChunkContext ctx{cfg, tok, *teacher, examples, templ, rset, label};
  for (size_t c0 = 0; c0 < todo.size(); c0 += cfg.prompts_per_chunk) {
    const size_t c1 = std::min(todo.size(), c0 + cfg.prompts_per_chunk);
    std::vector<size_t> chunk(todo.begin() + c0, todo.begin() + c1);
    const std::string block = sample_chunk(ctx, chunk, stats, prev.hashes);
    // Rows first, then the prompts they finish: a crash in between only repeats (deduplicated)
    // work, never loses a prompt.
    out << block;
    out.flush();
    for (size_t i = c0; i < c1; ++i) done << examples[todo[i]].id << "\n";
    done.flush();
    if (!out || !done) fail("writing ", cfg.output, " failed: ", std::strerror(errno));
    stats.prompts += static_cast<int64_t>(c1 - c0);
    save_json_file(cfg.output + ".stats.json", stats.to_json());
    if (on_chunk) on_chunk(stats, static_cast<int64_t>(examples.size()));
  }
  save_json_file(cfg.output + ".stats.json", stats.to_json());
  return stats;
}

}  // namespace aha::distill
