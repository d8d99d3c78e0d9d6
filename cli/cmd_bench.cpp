// `aha bench`: end-to-end throughput figures as JSON lines. This file: the dispatch of the kinds
// and `bench train` (a training step and its phases); gemm and generate have their own files.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "aha/core/gemm_bf16.h"
#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "aha/core/threading.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "aha/policy/presets.h"
#include "bench.h"
#include "options.h"

namespace aha::cli {

namespace {

const char* kernel_name(MatmulPrecision p) {
  return p == MatmulPrecision::bf16 ? bf16_kernel() : gemm_backend();
}

// Nominal FLOPs per trainable value of the optimizer phase: the clipping norm (square, add) and
// the AdamW update as written in policy/src/optimizer.cpp (m: 3, v: 4, p: 7 counting sqrt and
// the divide as one each). Memory-bound: its share of the GEMM roof is small by nature.
constexpr double kOptimizerFlopsPerParam = 2 + 3 + 4 + 7;

// The LM head's three GEMMs (logits = h W^T, dh = dlogits W, dW = dlogits^T h) on their own, at
// the step's shapes: what the head costs without the log-softmax around it.
double lm_head_seconds(const float* h, const float* w, int64_t n, int64_t d, int64_t vocab) {
  std::vector<float> logits(n * vocab), dh(n * d, 0.0f), dw(vocab * d, 0.0f);
  auto t0 = BenchClock::now();
  gemm_xwt(h, w, static_cast<const float*>(nullptr), logits.data(), n, d, vocab);
  gemm_dyw(logits.data(), w, dh.data(), n, d, vocab);
  gemm_dytx(logits.data(), h, dw.data(), static_cast<float*>(nullptr), n, d, vocab);
  return seconds_since(t0);
}

// What every point of one `bench train` call shares.
struct TrainBench {
  policy::Model<float>& model;
  policy::Optimizer<float>& opt;
  int iters;
  double roof, peak;  // the step precision's best GEMM, and the fp32 1024^3 figure
  std::string name;
  MatmulPrecision prec;
};

// One (batch, seq_len) point: timed steps and the per-phase figures; prints the JSON line and
// the phase table.
void train_point(const TrainBench& tp, int64_t batch, int64_t len) {
  const policy::ModelConfig& cfg = tp.model.config();
  Rng rng(7);
  std::vector<std::vector<int32_t>> seqs(batch, std::vector<int32_t>(len));
  for (auto& s : seqs) {
    for (auto& t : s) t = static_cast<int32_t>(rng.below(cfg.vocab_size));
  }
  policy::Batch b = policy::Batch::from_sequences(seqs);
  policy::Activations<float> acts;
  std::vector<float> dlogprob(b.n_tokens(), -1.0f / static_cast<float>(b.n_tokens()));
  // Check the output once before timing.
  tp.model.forward(b, {}, acts);
  if (!std::isfinite(acts.logprob[0])) fail("bench: non-finite logprob");
  std::vector<int64_t> lens(batch, len);
  const double fwd_flops = policy::forward_flops(cfg, lens);
  const int64_t n = b.n_tokens(), d = cfg.hidden_size, vocab = cfg.vocab_size;
  Phase fwd{"forward"}, bwd{"backward"}, opt_phase{"optimizer"}, head{"lm_head"};
  fwd.flops = fwd_flops;
  bwd.flops = 2.0 * fwd_flops;
  opt_phase.flops = kOptimizerFlopsPerParam * double(tp.model.n_params());
  head.flops = 3.0 * 2.0 * double(n) * double(d) * double(vocab);
  double step_time = 1e30;
  for (int it = 0; it < tp.iters; ++it) {
    auto t0 = BenchClock::now();
    tp.model.forward(b, {}, acts);
    const double tf = seconds_since(t0);
    auto t1 = BenchClock::now();
    tp.model.zero_grad();
    tp.model.backward(acts, dlogprob.data(), nullptr, {.seq = 1.0, .batch = 1.0}, nullptr, nullptr);
    const double tb = seconds_since(t1);
    auto t2 = BenchClock::now();
    policy::clip_grad_norm(tp.model.table(), tp.model.grads().data(), 1.0);
    tp.opt.step(tp.model.params().data(), tp.model.grads().data(), 1e-5);
    const double to = seconds_since(t2);
    const double th = lm_head_seconds(acts.h_final.data(),
                                      tp.model.params().data() + tp.model.lm_head_offset(), n, d,
                                      vocab);
    fwd.seconds = std::min(fwd.seconds, tf);
    bwd.seconds = std::min(bwd.seconds, tb);
    opt_phase.seconds = std::min(opt_phase.seconds, to);
    head.seconds = std::min(head.seconds, th);
    step_time = std::min(step_time, tf + tb);
  }
  double flops = 3.0 * fwd_flops;
  double gflops = flops / step_time / 1e9;
  Json phases;
  for (const Phase* p : {&fwd, &bwd, &opt_phase, &head}) phases[p->name] = phase_json(*p, tp.roof);
  Json out = {{"bench", "train"}, {"model", tp.name},
              {"params", tp.model.n_params()}, {"batch", batch}, {"seq_len", len},
              {"lora_rank", cfg.lora.rank},
              {"trainable_params", cfg.lora.on() ? int64_t(tp.model.params().size() -
                                                           tp.model.adapter_begin())
                                                 : tp.model.n_params()},
              {"threads", max_threads()}, {"tokens_per_s", n / step_time},
              {"forward_tokens_per_s", n / fwd.seconds},
              {"step_s", step_time}, {"gflops", gflops}, {"gemm_peak_gflops", tp.peak},
              {"pct_of_gemm_peak", 100.0 * gflops / tp.peak}, {"roof_gflops", tp.roof},
              {"phases", phases},
              {"precision", matmul_precision_name(tp.prec)}, {"kernel", kernel_name(tp.prec)},
              {"blas_core", gemm_blas_core()},
              {"peak_rss_mb", peak_rss_mb()}};
  // The human-readable breakdown goes to stderr: stdout stays one JSON line per point.
  char title[160];
  std::snprintf(title, sizeof title,
                "train %s  batch %lld x %lld  %s  roof %.1f GFLOP/s (best gemm 256-1024^3)",
                tp.name.c_str(), static_cast<long long>(batch), static_cast<long long>(len),
                matmul_precision_name(tp.prec), tp.roof);
  print_phase_table(title, {fwd, bwd, opt_phase, head}, tp.roof);
  std::cout << out.dump() << std::endl;
}

int bench_train(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string preset, config, batches, seq_lens, precision;
  int threads = 0, iters = 3, lora_rank = 0;
  desc.add_options()
      ("preset", po::value(&preset)->default_value("small"), "tiny | small | base | tiny-mhc | small-mhc | tiny-engram | tiny-v41 | tiny-nsa")
      ("config", po::value(&config), "an HF config.json instead of a preset")
      ("batch", po::value(&batches)->default_value("8"), "sequences per step (list: 4,8)")
      ("seq-len", po::value(&seq_lens)->default_value("256"), "tokens per sequence (list)")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("iters", po::value(&iters)->default_value(3), "timed steps per point")
      ("precision", po::value(&precision)->default_value("fp32"), "matmul precision: fp32 | bf16")
      ("lora-rank", po::value(&lora_rank)->default_value(0),
       "LoRA adapters of this rank on every attention and MLP projection, base frozen (0: full)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha bench train [--preset small | --config CFG.json] [--batch 8]\n"
                     "       [--seq-len 128,256,512] [--threads N]\n"
                     "Times forward+backward of the policy; GFLOP/s counts 3x forward FLOPs.\n"
                     "Per phase (JSON \"phases\", table on stderr): forward, backward, optimizer\n"
                     "(grad clip + AdamW) and the LM head's GEMMs alone, each against the roof\n"
                     "(aha's best square GEMM, 256^3 to 1024^3, in this process);\n"
                     "docs/performance.md.")) {
    return 0;
  }
  if (iters < 1) fail("--iters must be >= 1");
  ThreadLimit limit(threads);
  const MatmulPrecision prec = matmul_precision_from(precision, "--precision");
  Json j = vm.count("config") ? load_json_file(config) : policy::preset_config(preset);
  policy::ModelConfig cfg = policy::ModelConfig::from_json(j);
  if (lora_rank > 0) {
    cfg.lora.rank = lora_rank;
    cfg.lora.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "q_a_proj", "q_b_proj",
                               "kv_a_proj_with_mqa", "kv_b_proj", "gate_proj", "up_proj",
                               "down_proj"};
  }
  policy::Model<float> model(cfg);
  model.init_random(0);
  model.init_adapters(1);
  const double peak = gemm_gflops(1024, 1024, 1024, 3);  // fp32, before switching precision
  MatmulPrecisionScope scope(prec);
  // The roof of the phases: aha's best GEMM at the step's precision in this process.
  const double roof = gemm_roof_gflops();
  policy::Optimizer<float> opt(model.table(), policy::OptimizerConfig{});
  const TrainBench tp{model, opt, iters, roof, peak, vm.count("config") ? config : preset, prec};
  for (int64_t batch : parse_int_list(batches, "--batch")) {
    for (int64_t len : parse_int_list(seq_lens, "--seq-len")) {
      train_point(tp, batch, len);
    }
  }
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  const std::string usage =
      "usage: aha bench <gemm|memory|train|generate|tokenize|reward> [options]   (aha bench <kind> --help)";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage << "\n";
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "gemm") return bench_gemm(rest);
  if (args[0] == "memory") return bench_memory(rest);
  if (args[0] == "train") return bench_train(rest);
  if (args[0] == "tokenize") return bench_tokenize(rest);
  if (args[0] == "generate") return bench_generate(rest);
  if (args[0] == "reward") return bench_reward(rest);
  fail("unknown benchmark '", args[0], "' (", usage, ")");
}

}  // namespace aha::cli
