// `aha bench`: end-to-end throughput figures as JSON lines (gemm peak, train step).
#include <tbb/info.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>

#include "aha/core/rng.h"
#include "aha/core/tensor.h"
#include "aha/core/threading.h"
#include "aha/policy/model.h"
#include "aha/policy/presets.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best-of-repeats GFLOP/s of y = x w^T (the linear layer's kernel) at size n^3.
double gemm_gflops(int64_t n, int repeats) {
  std::vector<float> x(n * n), w(n * n), y(n * n);
  Rng rng(1);
  for (auto& v : x) v = static_cast<float>(rng.normal());
  for (auto& v : w) v = static_cast<float>(rng.normal());
  gemm_xwt(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), n, n, n);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    gemm_xwt(x.data(), w.data(), static_cast<const float*>(nullptr), y.data(), n, n, n);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * n * n * n / best / 1e9;
}

int bench_gemm(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string sizes;
  int threads = 0, repeats = 5;
  desc.add_options()
      ("sizes", po::value(&sizes)->default_value("256,512,1024,2048"), "square sizes n")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("repeats", po::value(&repeats)->default_value(5), "timed repeats (best is reported)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha bench gemm [--sizes 512,1024] [--threads N]")) {
    return 0;
  }
  ThreadLimit limit(threads);
  for (int64_t n : parse_int_list(sizes, "--sizes")) {
    Json j = {{"bench", "gemm"}, {"n", n}, {"threads", max_threads()},
              {"gflops", gemm_gflops(n, repeats)}};
    std::cout << j.dump() << std::endl;
  }
  return 0;
}

int bench_train(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string preset, config, batches, seq_lens;
  int threads = 0, iters = 3;
  desc.add_options()
      ("preset", po::value(&preset)->default_value("small"), "tiny | small | base | tiny-mhc | small-mhc")
      ("config", po::value(&config), "an HF config.json instead of a preset")
      ("batch", po::value(&batches)->default_value("8"), "sequences per step (list: 4,8)")
      ("seq-len", po::value(&seq_lens)->default_value("256"), "tokens per sequence (list)")
      ("threads", po::value(&threads)->default_value(0), "threads (0 = all cores)")
      ("iters", po::value(&iters)->default_value(3), "timed steps per point");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha bench train [--preset small | --config CFG.json] [--batch 8]\n"
                     "       [--seq-len 128,256,512] [--threads N]\n"
                     "Times forward+backward of the policy; GFLOP/s counts 3x forward FLOPs.")) {
    return 0;
  }
  if (iters < 1) fail("--iters must be >= 1");
  ThreadLimit limit(threads);
  Json j = vm.count("config") ? load_json_file(config) : policy::preset_config(preset);
  policy::ModelConfig cfg = policy::ModelConfig::from_json(j);
  policy::Model<float> model(cfg);
  model.init_random(0);
  const double peak = gemm_gflops(1024, 3);
  for (int64_t batch : parse_int_list(batches, "--batch")) {
    for (int64_t len : parse_int_list(seq_lens, "--seq-len")) {
      Rng rng(7);
      std::vector<std::vector<int32_t>> seqs(batch, std::vector<int32_t>(len));
      for (auto& s : seqs) {
        for (auto& t : s) t = static_cast<int32_t>(rng.below(cfg.vocab_size));
      }
      policy::Batch b = policy::Batch::from_sequences(seqs);
      policy::Activations<float> acts;
      std::vector<float> dlogprob(b.n_tokens(), -1.0f / static_cast<float>(b.n_tokens()));
      // Check the output once before timing.
      model.forward(b, {}, acts);
      if (!std::isfinite(acts.logprob[0])) fail("bench: non-finite logprob");
      double fwd_time = 1e30, step_time = 1e30;
      for (int it = 0; it < iters; ++it) {
        auto t0 = Clock::now();
        model.forward(b, {}, acts);
        double tf = seconds_since(t0);
        model.zero_grad();
        model.backward(acts, dlogprob.data(), nullptr, 1.0, nullptr, nullptr);
        fwd_time = std::min(fwd_time, tf);
        step_time = std::min(step_time, seconds_since(t0));
      }
      std::vector<int64_t> lens(batch, len);
      double flops = 3.0 * policy::forward_flops(cfg, lens);
      double gflops = flops / step_time / 1e9;
      Json out = {{"bench", "train"}, {"model", vm.count("config") ? config : preset},
                  {"params", model.n_params()}, {"batch", batch}, {"seq_len", len},
                  {"threads", max_threads()}, {"tokens_per_s", b.n_tokens() / step_time},
                  {"forward_tokens_per_s", b.n_tokens() / fwd_time},
                  {"step_s", step_time}, {"gflops", gflops}, {"gemm_peak_gflops", peak},
                  {"pct_of_gemm_peak", 100.0 * gflops / peak}};
      std::cout << out.dump() << std::endl;
    }
  }
  return 0;
}

}  // namespace

int cmd_bench(const Args& args) {
  const std::string usage =
      "usage: aha bench <gemm|train|generate|tokenize|reward> [options]   (aha bench <kind> --help)";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage << "\n";
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "gemm") return bench_gemm(rest);
  if (args[0] == "train") return bench_train(rest);
  if (args[0] == "tokenize") return bench_tokenize(rest);
  if (args[0] == "generate") return bench_generate(rest);
  if (args[0] == "reward") return bench_reward(rest);
  fail("unknown benchmark '", args[0], "' (", usage, ")");
}

}  // namespace aha::cli
