// `aha bench generate`: prefill and decode throughput of the rollout engine, and cache memory.
#include <chrono>
#include <iostream>
#include <sstream>

#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/core/threading.h"
#include "aha/policy/presets.h"
#include "aha/rollout/engine.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

namespace {

struct Timing {
  double prefill_s = 0, decode_s = 0;
};

// One generate call. All requests fit in one batch, so the engine prefills them all before its
// first progress report and reports again after every decode step: prefill is the time to the
// first report, decode the time from the first report to the last.
Timing run_once(const rollout::Engine& engine, const std::vector<rollout::Request>& reqs) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  Clock::time_point first, last;
  bool seen = false;
  auto out = engine.generate(reqs, [&](const rollout::Progress&) {
    last = Clock::now();
    if (!seen) first = last;
    seen = true;
  });
  for (const auto& c : out) {
    if (c.finish_reason == "error") fail("bench: generation failed: ", c.error);
  }
  Timing t;
  t.prefill_s = std::chrono::duration<double>(first - t0).count();
  t.decode_s = std::chrono::duration<double>(last - first).count();
  return t;
}

}  // namespace

int bench_generate(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string preset, config, batches, prompt_lens, precision_name;
  int new_tokens = 64, threads = 0;
  bool naive = false;
  desc.add_options()("preset", po::value(&preset)->default_value("small"), "tiny | small | base | tiny-mhc | small-mhc | tiny-engram | tiny-v41 | tiny-nsa | small-dsa")(
      "config", po::value(&config), "an HF config.json instead of a preset")(
      "batch", po::value(&batches)->default_value("1,16,64"), "concurrent sequences (list)")(
      "prompt-len", po::value(&prompt_lens)->default_value("64"), "prompt tokens (list)")(
      "new-tokens", po::value(&new_tokens)->default_value(64), "generated tokens per sequence")(
      "threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")(
      "precision", po::value(&precision_name)->default_value("fp32"), "matmul precision: fp32 | bf16")(
      "naive", po::bool_switch(&naive), "also time the naive (non-absorbed) MLA decode");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha bench generate [--preset small | --config CFG.json]\n"
                     "       [--batch 1,16,64] [--prompt-len 64,256,1024] [--new-tokens 64]\n"
                     "Decode tokens/s excludes prefill (timed separately).")) {
    return 0;
  }
  if (new_tokens < 2) fail("--new-tokens must be >= 2");
  ThreadLimit limit(threads);
  const MatmulPrecision prec = matmul_precision_from(precision_name, "--precision");
  MatmulPrecisionScope precision(prec);
  Json j = vm.count("config") ? load_json_file(config) : policy::preset_config(preset);
  policy::Model<float> model(policy::ModelConfig::from_json(j));
  model.init_random(0);
  const int V = model.config().vocab_size;
  std::vector<bool> modes = {true};
  if (naive) modes.push_back(false);
  for (int64_t B : parse_int_list(batches, "--batch")) {
    for (int64_t L : parse_int_list(prompt_lens, "--prompt-len")) {
      Rng rng(3);
      std::vector<rollout::Request> reqs(B);
      for (auto& r : reqs) {
        for (int64_t t = 0; t < L; ++t) r.prompt.push_back(static_cast<int32_t>(rng.below(V)));
        r.params.max_new_tokens = new_tokens;
        r.params.stop_token_ids = {-1};  // never stop early: every sequence decodes new_tokens
      }
      for (bool absorbed : modes) {
        rollout::EngineOptions opts;
        opts.max_batch = static_cast<int>(B);
        opts.absorbed = absorbed;
        rollout::Engine engine(model, opts);
        // Best of two runs for each phase: noise from other processes only ever adds time.
        Timing a = run_once(engine, reqs), b = run_once(engine, reqs);
        const double t_prefill = std::min(a.prefill_s, b.prefill_s);
        const double t_decode = std::min(a.decode_s, b.decode_s);
        double decode_tokens = double(B) * (new_tokens - 1);
        const auto& dec = engine.decoder();
        int64_t ctx = L + new_tokens;
        Json out = {{"bench", "generate"},
                    {"model", vm.count("config") ? config : preset},
                    {"path", absorbed ? "absorbed" : "naive"},
                    {"batch", B},
                    {"prompt_len", L},
                    {"new_tokens", new_tokens},
                    {"threads", max_threads()},
                    {"precision", matmul_precision_name(prec)},
                    {"prefill_tokens_per_s", double(B * L) / t_prefill},
                    {"decode_tokens_per_s", decode_tokens / t_decode},
                    {"cache_bytes_per_token", dec.cache_bytes_per_token()},
                    {"full_kv_bytes_per_token", dec.full_kv_bytes_per_token()},
                    {"cache_bytes_per_sequence", dec.cache_bytes_per_token() * ctx}};
        std::cout << out.dump() << std::endl;
      }
    }
  }
  return 0;
}

}  // namespace aha::cli
