// `aha bench generate`: prefill and decode throughput of the rollout engine, cache memory, and
// per phase (prefill, decode, and decode split into attention, MoE/MLP, the rest of the blocks,
// the LM head and sampling) time, GFLOP, GFLOP/s and share of the GEMM roof.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <string>

#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "aha/core/threading.h"
#include "aha/core/weight_cache.h"
#include "aha/policy/presets.h"
#include "aha/policy/profile.h"
#include "aha/rollout/engine.h"
#include "bench.h"
#include "options.h"

namespace aha::cli {

namespace {

struct Timing {
  double prefill_s = 0, decode_s = 0;
  // Decode only, from the blocks' profile: whole blocks, their attention and MoE/MLP sublayers.
  double block_s = 0, attention_s = 0, ffn_s = 0;
  int64_t drafted = 0, accepted = 0;  // speculative decoding
};

// One generate call. All requests fit in one batch, so the engine prefills them all before its
// first progress report and reports again after every decode step: prefill is the time to the
// first report, decode the time from the first report to the last. The blocks' profile restarts
// at the first report, so it holds decode alone.
Timing run_once(const rollout::Engine& engine, const std::vector<rollout::Request>& reqs) {
  policy::BlockProfile prof;
  policy::BlockProfileScope scope(prof);
  const auto t0 = BenchClock::now();
  BenchClock::time_point first, last;
  bool seen = false;
  int64_t drafted = 0, accepted = 0;
  auto out = engine.generate(reqs, [&](const rollout::Progress& p) {
    drafted = p.drafted;
    accepted = p.accepted;
    last = BenchClock::now();
    if (!seen) first = last, prof.reset();
    seen = true;
  });
  for (const auto& c : out) {
    if (c.finish_reason == "error") fail("bench: generation failed: ", c.error);
  }
  Timing t;
  t.prefill_s = std::chrono::duration<double>(first - t0).count();
  t.decode_s = std::chrono::duration<double>(last - first).count();
  t.block_s = 1e-9 * double(prof.block_ns.load());
  t.attention_s = 1e-9 * double(prof.attention_ns.load());
  t.ffn_s = 1e-9 * double(prof.ffn_ns.load());
  t.drafted = drafted;
  t.accepted = accepted;
  return t;
}

// `steps` LM-head products of `rows` rows through the decoder's batch-invariant kernel, alone:
// the head's share of decode (the decoder does not time its parts).
double lm_head_seconds(const policy::Model<float>& model, int64_t rows, int64_t steps) {
  const policy::ModelConfig& c = model.config();
  std::vector<float> h(rows * c.hidden_size), logits(rows * c.vocab_size);
  Rng rng(5);
  for (auto& v : h) v = static_cast<float>(rng.normal());
  // As Engine::generate: weights packed once.
  const WeightCache weights(model.params().data(), static_cast<int64_t>(model.params().size()));
  const float* w = model.params().data() + model.lm_head_offset();
  const float* none = nullptr;
  gemm_xwt_rowstable(h.data(), w, none, logits.data(), rows, c.hidden_size, c.vocab_size);
  const auto t0 = BenchClock::now();
  for (int64_t s = 0; s < steps; ++s) {
    gemm_xwt_rowstable(h.data(), w, none, logits.data(), rows, c.hidden_size, c.vocab_size);
  }
  return seconds_since(t0);
}

// The prompts prefilled one at a time, as the engine did before it prefilled the admitted
// prompts together (best of two): the batching's gain, measured in the same run.
double prefill_alone_seconds(const rollout::Decoder& dec,
                             const std::vector<rollout::Request>& reqs) {
  const auto& params = dec.model().params();  // as Engine::generate
  const WeightCache weights(params.data(), static_cast<int64_t>(params.size()));
  double best = 1e30;
  for (int rep = 0; rep < 2; ++rep) {
    const auto t0 = BenchClock::now();
    for (const auto& r : reqs) {
      rollout::SeqCache cache;
      std::vector<float> logits;
      dec.prefill(r.prompt, cache, logits);
    }
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// The phases of one point. FLOPs are the model's (policy::forward_flops_parts, the naive
// attention's count: the absorbed decode does the same math in another order): prefill runs the
// prompts with the head on their last token only; decode adds tokens L .. L + new - 2.
std::vector<Phase> phases(const policy::Model<float>& model, const Timing& t, int64_t B,
                          int64_t L, int64_t new_tokens) {
  const policy::ModelConfig& c = model.config();
  const policy::ForwardFlops p0 = policy::forward_flops_parts(c, {L});
  const policy::ForwardFlops p1 = policy::forward_flops_parts(c, {L + new_tokens - 1});
  const double steps = double(new_tokens - 1), head_per_token = p0.lm_head / double(L);
  const double head_s = lm_head_seconds(model, B, new_tokens - 1);
  std::vector<Phase> out;
  out.push_back({"prefill", t.prefill_s, B * (p0.total() - head_per_token * double(L - 1))});
  out.push_back({"decode", t.decode_s, B * (p1.total() - p0.total())});
  out.push_back({"attention", t.attention_s, B * (p1.attention - p0.attention)});
  out.push_back({"moe_mlp", t.ffn_s, B * (p1.ffn - p0.ffn)});
  // Norms, residual adds, hyper-connection mixes, Engram.
  out.push_back({"block_other", std::max(0.0, t.block_s - t.attention_s - t.ffn_s),
                 B * (p1.other - p0.other)});
  out.push_back({"lm_head", head_s, B * steps * head_per_token});
  // What is left of a decode step: sampling, embedding, the final norm, the engine's own work.
  out.push_back({"sampling_other", std::max(0.0, t.decode_s - t.block_s - head_s), 0.0});
  return out;
}

Json phases_json(const std::vector<Phase>& ph, double roof) {
  Json j;
  const double decode_s = ph[1].seconds;
  for (size_t i = 0; i < ph.size(); ++i) {
    j[ph[i].name] = phase_json(ph[i], roof);
    // The decode parts' share of a decode step's time.
    if (i >= 2) j[ph[i].name]["share_of_decode"] = decode_s > 0 ? ph[i].seconds / decode_s : 0.0;
  }
  return j;
}

// Bytes a decode step reads, estimated: every weight once, except the input embedding's rows no
// token looks up and the routed experts no token chose (routing spread evenly: an expert is idle
// with probability (1 - k/E)^B), at 4 bytes a value in fp32 and 2 under bf16 (the kernels'
// packed copies); and every cached row of every sequence once, at the decode's mean context.
// `aha bench memory` gives the machine's read bandwidth to compare the rate with.
struct StreamBytes {
  double weights = 0, cache = 0;
};

StreamBytes decode_stream_bytes(const policy::Model<float>& model, const rollout::Decoder& dec,
                                int64_t B, int64_t L, int64_t new_tokens, MatmulPrecision prec) {
  const policy::ModelConfig& c = model.config();
  const double value_bytes = prec == MatmulPrecision::bf16 ? 2.0 : 4.0;
  double values = double(model.params().size()), routed = 0;
  if (!c.tie_word_embeddings) {
    values -= double(c.vocab_size - std::min<int64_t>(B, c.vocab_size)) * c.hidden_size;
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    if (c.is_moe_layer(l)) {
      routed += 3.0 * c.n_routed_experts * c.hidden_size * c.moe_intermediate_size;
    }
  }
  if (routed > 0) {
    const double k_of_e = double(c.num_experts_per_tok) / c.n_routed_experts;
    values -= routed * std::pow(1.0 - k_of_e, double(B));
  }
  const double mean_context = double(L) + double(new_tokens) / 2.0;
  return {values * value_bytes, double(B) * mean_context * double(dec.cache_bytes_per_token())};
}

// What every point of one `bench generate` call shares.
struct GenerateBench {
  const policy::Model<float>& model;
  std::string name;
  MatmulPrecision prec;
  int64_t new_tokens;
  double roof;
  bool speculative;
};

// Decode with the MTP module drafting (EngineOptions::speculative): tokens/s (best of two runs),
// the share of drafts kept and the ratio to plain decode's tokens/s.
Json speculative_point(const GenerateBench& g, const std::vector<rollout::Request>& reqs,
                       int64_t B, double plain_tokens_per_s) {
  rollout::EngineOptions opts;
  opts.max_batch = static_cast<int>(B);
  opts.speculative = true;
  rollout::Engine engine(g.model, opts);
  const Timing a = run_once(engine, reqs), b = run_once(engine, reqs);
  const Timing& t = a.decode_s <= b.decode_s ? a : b;
  const double tps = double(B) * double(g.new_tokens - 1) / t.decode_s;
  return {{"decode_tokens_per_s", tps},
          {"drafts", t.drafted},
          {"kept", t.drafted > 0 ? double(t.accepted) / double(t.drafted) : 0.0},
          {"vs_plain", tps / plain_tokens_per_s}};
}

void generate_point(const GenerateBench& g, int64_t B, int64_t L, bool absorbed) {
  Rng rng(3);
  const int V = g.model.config().vocab_size;
  std::vector<rollout::Request> reqs(B);
  for (auto& r : reqs) {
    for (int64_t t = 0; t < L; ++t) r.prompt.push_back(static_cast<int32_t>(rng.below(V)));
    r.params.max_new_tokens = static_cast<int>(g.new_tokens);
    r.params.stop_token_ids = {-1};  // never stop early: every sequence decodes new_tokens
  }
  rollout::EngineOptions opts;
  opts.max_batch = static_cast<int>(B);
  opts.absorbed = absorbed;
  rollout::Engine engine(g.model, opts);
  // Untimed runs for half a second first: right after the roof's GEMMs, a process's first point
  // ran its two timed runs 1.3-1.5x slower than later points did (batch 1 first: 2,300-2,500
  // tok/s, last: 3,400, on a 2-core EPYC; one untimed run was not enough), which made the batch
  // ratios depend on the order of --batch. Then the best of two for each phase: noise from other
  // processes only ever adds time. The breakdown is the faster decode's.
  const auto warm = BenchClock::now();
  do {
    run_once(engine, reqs);
  } while (seconds_since(warm) < 0.5);
  Timing a = run_once(engine, reqs), b = run_once(engine, reqs);
  Timing t = a.decode_s <= b.decode_s ? a : b;
  t.prefill_s = std::min(a.prefill_s, b.prefill_s);
  const double decode_tokens = double(B) * double(g.new_tokens - 1);
  const std::vector<Phase> ph = phases(g.model, t, B, L, g.new_tokens);
  const auto& dec = engine.decoder();
  const int64_t ctx = L + g.new_tokens;
  const Phase alone{"prefill_alone", prefill_alone_seconds(dec, reqs), ph[0].flops};
  const StreamBytes stream = decode_stream_bytes(g.model, dec, B, L, g.new_tokens, g.prec);
  const double read_gbps =
      (stream.weights + stream.cache) * double(g.new_tokens - 1) / t.decode_s / 1e9;
  Json out = {{"bench", "generate"},
              {"model", g.name},
              {"path", absorbed ? "absorbed" : "naive"},
              {"batch", B},
              {"prompt_len", L},
              {"new_tokens", g.new_tokens},
              {"threads", max_threads()},
              {"precision", matmul_precision_name(g.prec)},
              {"prefill_tokens_per_s", double(B * L) / t.prefill_s},
              {"decode_tokens_per_s", decode_tokens / t.decode_s},
              {"roof_gflops", g.roof},
              {"phases", phases_json(ph, g.roof)},
              {"prefill_alone", phase_json(alone, g.roof)},
              {"prefill_alone_tokens_per_s", double(B * L) / alone.seconds},
              {"cache_bytes_per_token", dec.cache_bytes_per_token()},
              {"full_kv_bytes_per_token", dec.full_kv_bytes_per_token()},
              {"cache_bytes_per_sequence", dec.cache_bytes_per_token() * ctx},
              {"decode_weight_mb_per_step", stream.weights / 1e6},
              {"decode_cache_mb_per_step", stream.cache / 1e6},
              {"decode_read_gbps", read_gbps},
              {"peak_rss_mb", peak_rss_mb()}};  // the process's so far: the largest point's
  char title[200];
  std::snprintf(title, sizeof title,
                "generate %s %s  batch %lld  prompt %lld  new %lld  %s  roof %.1f GFLOP/s",
                g.name.c_str(), absorbed ? "absorbed" : "naive", static_cast<long long>(B),
                static_cast<long long>(L), static_cast<long long>(g.new_tokens),
                matmul_precision_name(g.prec), g.roof);
  print_phase_table(title, ph, g.roof);
  std::fprintf(stderr, "prefill one prompt at a time: %.1f GFLOP/s (%.0f%% of the roof)\n",
               alone.gflops(), g.roof > 0 ? 100 * alone.gflops() / g.roof : 0.0);
  std::fprintf(stderr,
               "decode reads ~%.1f MB a step (weights %.1f, cache %.1f): %.1f GB/s "
               "(aha bench memory gives the machine's)\n",
               (stream.weights + stream.cache) / 1e6, stream.weights / 1e6, stream.cache / 1e6,
               read_gbps);
  if (g.speculative && absorbed) {
    out["speculative"] = speculative_point(g, reqs, B, decode_tokens / t.decode_s);
    std::fprintf(stderr, "speculative: %.0f decode tok/s (%.2fx plain), %.1f%% of drafts kept\n",
                 out["speculative"]["decode_tokens_per_s"].get<double>(),
                 out["speculative"]["vs_plain"].get<double>(),
                 100 * out["speculative"]["kept"].get<double>());
  }
  std::cout << out.dump() << std::endl;
}

}  // namespace

int bench_generate(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string preset, config, batches, prompt_lens, precision_name;
  int new_tokens = 64, threads = 0;
  bool naive = false, speculative = false;
  desc.add_options()("preset", po::value(&preset)->default_value("small"), "tiny | small | base | tiny-mhc | small-mhc | tiny-engram | tiny-v41 | tiny-nsa | small-dsa")(
      "config", po::value(&config), "an HF config.json instead of a preset")(
      "batch", po::value(&batches)->default_value("1,16,64"), "concurrent sequences (list)")(
      "prompt-len", po::value(&prompt_lens)->default_value("64"), "prompt tokens (list)")(
      "new-tokens", po::value(&new_tokens)->default_value(64), "generated tokens per sequence")(
      "threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")(
      "precision", po::value(&precision_name)->default_value("fp32"), "matmul precision: fp32 | bf16")(
      "naive", po::bool_switch(&naive), "also time the naive (non-absorbed) MLA decode")(
      "speculative", po::bool_switch(&speculative),
      "also time speculative decoding with an MTP module as the draft (added to the config "
      "when it has none; random weights, so the keep rate is near its ceiling)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha bench generate [--preset small | --config CFG.json]\n"
                     "       [--batch 1,16,64] [--prompt-len 64,256,1024] [--new-tokens 64]\n"
                     "Decode tokens/s excludes prefill (timed separately). Per phase (JSON\n"
                     "\"phases\", table on stderr): prefill, decode, and decode's attention,\n"
                     "moe_mlp, block_other, lm_head (timed alone) and sampling_other (the rest),\n"
                     "against the roof (aha's best square GEMM in this process), and the bytes\n"
                     "a decode step reads and their rate (aha bench memory gives the machine's);\n"
                     "docs/performance.md.")) {
    return 0;
  }
  if (new_tokens < 2) fail("--new-tokens must be >= 2");
  ThreadLimit limit(threads);
  const MatmulPrecision prec = matmul_precision_from(precision_name, "--precision");
  MatmulPrecisionScope precision(prec);
  Json j = vm.count("config") ? load_json_file(config) : policy::preset_config(preset);
  if (speculative && j.value("num_nextn_predict_layers", 0) < 1) j["num_nextn_predict_layers"] = 1;
  policy::Model<float> model(policy::ModelConfig::from_json(j));
  model.init_random(0);
  const GenerateBench g{model, vm.count("config") ? config : preset, prec, new_tokens,
                        gemm_roof_gflops(), speculative};
  std::vector<bool> modes = {true};
  if (naive) modes.push_back(false);
  for (int64_t B : parse_int_list(batches, "--batch")) {
    for (int64_t L : parse_int_list(prompt_lens, "--prompt-len")) {
      for (bool absorbed : modes) generate_point(g, B, L, absorbed);
    }
  }
  return 0;
}

}  // namespace aha::cli
