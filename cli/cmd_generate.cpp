// `aha generate`: grouped completions with sampled-token logprobs and finish reasons.
#include <filesystem>
#include <iostream>
#include <memory>

#include "aha/core/gemm_bf16.h"
#include "aha/core/threading.h"
#include "aha/datasets/prompt_template.h"
#include "aha/policy/checkpoint.h"
#include "aha/tokenizer/chat_template.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/grpo/rollouts.h"
#include "aha/rollout/engine.h"
#include "aha/train/sample_score.h"
#include "commands.h"
#include "jsonl.h"
#include "options.h"
#include "progress.h"
#include "tool_options.h"

namespace aha::cli {

namespace {

struct GenerateArgs {
  std::string model, prompts, templ, precision;
  int n = 1, threads = 0, max_batch = 64;
  uint64_t seed = 0;
  bool naive = false, routing = false, speculative = false;
  rollout::SamplingParams params;
  std::vector<std::string> stop;
};

std::unique_ptr<tokenizer::Tokenizer> maybe_tokenizer(const std::string& model_dir) {
  std::filesystem::path p = std::filesystem::path(model_dir) / "tokenizer.json";
  if (!std::filesystem::exists(p)) return nullptr;
  return std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(model_dir));
}

Json completion_json(const Rollout& c, const tokenizer::Tokenizer* tok, bool routing) {
  Json j = {{"prompt_index", c.group}, {"sample_index", c.sample_index},
            {"ids", c.completion_ids}, {"token_logprobs", c.sampling_dist_logprobs},
            {"policy_logprobs", c.sampled_logprobs}, {"finish_reason", c.finish_reason}};
  if (tok != nullptr && c.finish_reason != "error") j["text"] = c.completion_text;
  if (!c.error.empty()) j["error"] = c.error;
  if (!c.turns.empty()) {  // an episode: its loss mask and turns, as in a rollout file
    const Json line = grpo::rollout_to_json(c);
    j["loss_mask"] = line["loss_mask"];
    j["turns"] = line["turns"];
  }
  if (routing) j["routing"] = c.routing;
  return j;
}

// One request per line of the prompts file: {"ids": [...]} or {"prompt": "text"}.
std::vector<rollout::Request> read_requests(const GenerateArgs& a, const tokenizer::Tokenizer* tok,
                                            const datasets::PromptTemplate* templ) {
  std::vector<rollout::Request> reqs;
  for_each_jsonl(a.prompts, [&](const Json& j, int64_t lineno) {
    rollout::Request r;
    r.n = a.n;
    r.params = a.params;
    if (j.contains("ids")) {
      if (!j["ids"].is_array()) fail(a.prompts, ":", lineno, ": ids must be an array");
      for (const Json& v : j["ids"]) {
        if (!v.is_number_integer()) fail(a.prompts, ":", lineno, ": ids must be integers");
        int64_t id = v.get<int64_t>();
        // Out-of-range ids become an "error" completion; keep them representable.
        r.prompt.push_back(id < 0 || id > INT32_MAX ? -1 : static_cast<int32_t>(id));
      }
    } else if (j.contains("prompt") && j["prompt"].is_string()) {
      if (tok == nullptr) {
        fail(a.prompts, ":", lineno, ": text prompts need a tokenizer.json in ", a.model);
      }
      std::string text = templ != nullptr ? templ->render(j) : j["prompt"].get<std::string>();
      r.prompt = tok->encode(text, true);
    } else {
      fail(a.prompts, ":", lineno, ": expected {\"ids\": [...]} or {\"prompt\": \"...\"}");
    }
    reqs.push_back(std::move(r));
  });
  return reqs;
}

// The engine's options: sampling seed and batch, decode kind, recording, and the episodes of
// the tool options (which need the tokenizer).
rollout::EngineOptions engine_options(const GenerateArgs& a, const tokenizer::Tokenizer* tok,
                                      const grpo::EpisodeConfig& episodes) {
  rollout::EngineOptions opts;
  opts.episodes = episodes.engine_options();
  if (opts.episodes.enabled() && tok == nullptr) fail("tools need a tokenizer.json in ", a.model);
  opts.seed = a.seed;
  opts.max_batch = a.max_batch;
  opts.absorbed = !a.naive;
  opts.record_routing = a.routing;
  opts.speculative = a.speculative;
  if (tok != nullptr) train::use_tokenizer(opts, *tok);
  return opts;
}

// Generates with a progress line; with speculative decoding, the drafts and the keep rate on
// stderr after it.
std::vector<Rollout> run_engine(const policy::Model<float>& model,
                                const rollout::EngineOptions& opts,
                                const std::vector<rollout::Request>& reqs) {
  std::unique_ptr<rollout::Engine> engine;
  try {
    engine = std::make_unique<rollout::Engine>(model, opts);
  } catch (const Error& e) {
    if (!opts.speculative) throw;
    fail("--speculative: ", e.what());
  }
  ProgressLine progress("generate", "tok");
  rollout::Progress last;
  auto out = engine->generate(reqs, [&](const rollout::Progress& p) {
    progress.update(p.done, p.total, double(p.tokens), p.done == p.total);
    last = p;
  });
  progress.finish();
  if (opts.speculative) {
    std::cerr << "speculative: " << last.drafted << " drafts, " << last.accepted << " kept ("
              << (last.drafted > 0 ? 100.0 * double(last.accepted) / double(last.drafted) : 0.0)
              << "%)\n";
  }
  return out;
}

}  // namespace

int cmd_generate(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  GenerateArgs a;
  desc.add_options()
      ("model", po::value(&a.model)->required(), "checkpoint directory")
      ("prompts", po::value(&a.prompts)->default_value("-"),
       "JSONL of {\"ids\": [...]} or {\"prompt\": \"text\"} (- = stdin)")
      ("input,i", po::value<std::string>(), "the same as --prompts (the input's name in every command)")
      ("n", po::value(&a.n)->default_value(1), "completions per prompt (the group size G)")
      ("max-new-tokens", po::value(&a.params.max_new_tokens)->default_value(256), "limit")
      ("temperature", po::value(&a.params.temperature)->default_value(1.0, "1"), "0 = greedy")
      ("top-p", po::value(&a.params.top_p)->default_value(1.0, "1"), "nucleus mass")
      ("top-k", po::value(&a.params.top_k)->default_value(0), "0 = off")
      ("min-p", po::value(&a.params.min_p)->default_value(0.0, "0"), "relative probability floor")
      ("repetition-penalty", po::value(&a.params.repetition_penalty)->default_value(1.0, "1"), "")
      ("stop", po::value(&a.stop)->multitoken(), "stop strings (needs a tokenizer)")
      ("stop-id", po::value(&a.params.stop_token_ids)->multitoken(),
       "stop token ids (default: the model's eos_token_id)")
      ("template", po::value(&a.templ), "prompt template for {\"prompt\"} lines: r1_zero, text "
                                        "with {prompt}, or chat (the model's chat template)")
      ("seed", po::value(&a.seed)->default_value(0), "sampling seed")
      ("threads", po::value(&a.threads)->default_value(0), "worker threads (0 = all cores)")
      ("precision", po::value(&a.precision)->default_value("fp32"), "matmul precision: fp32 | bf16")
      ("max-batch", po::value(&a.max_batch)->default_value(64), "live sequences per step")
      ("naive", po::bool_switch(&a.naive), "naive MLA decode instead of the absorbed one")
      ("routing", po::bool_switch(&a.routing), "write the experts of every token (keep routing)")
      ("speculative", po::bool_switch(&a.speculative),
       "speculative decoding with the model's MTP module as the draft (exact: the same "
       "distribution, greedy the same tokens)");
  ToolArgs tool_args;
  add_tool_options(desc, tool_args);
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha generate --model DIR --prompts F.jsonl --n G [sampling options]\n"
                     "One JSONL line per completion: prompt_index, sample_index, ids (completion\n"
                     "only), text (with a tokenizer), token_logprobs, finish_reason.")) {
    return 0;
  }
  if (vm.count("input")) {
    if (!vm["prompts"].defaulted()) fail("give --prompts or --input, not both");
    a.prompts = vm["input"].as<std::string>();
  }
  a.params.stop_strings = a.stop;
  a.params.validate();
  if (a.n < 1) fail("--n must be >= 1");
  ThreadLimit limit(a.threads);
  MatmulPrecisionScope precision(matmul_precision_from(a.precision, "--precision"));
  auto model = policy::load_model<float>(a.model);
  auto tok = maybe_tokenizer(a.model);
  std::unique_ptr<datasets::PromptTemplate> templ;
  if (!a.templ.empty()) {
    templ = std::make_unique<datasets::PromptTemplate>(datasets::PromptTemplate::from_config(
        a.templ, [&] { return tokenizer::chat_prompt_renderer(a.model, tok.get()); }));
  }
  const std::vector<rollout::Request> reqs = read_requests(a, tok.get(), templ.get());
  const grpo::EpisodeConfig episodes = tool_episodes(tool_args);
  const rollout::EngineOptions opts = engine_options(a, tok.get(), episodes);
  std::vector<Rollout> out = run_engine(*model, opts, reqs);
  if (tok != nullptr) {
    for (auto& c : out) train::decode_texts(c, *tok);
  }
  for (const auto& c : out) std::cout << completion_json(c, tok.get(), a.routing).dump() << "\n";
  return 0;
}

}  // namespace aha::cli
