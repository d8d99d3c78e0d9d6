// `aha pretrain`: next-token training from a JSON config plus --set overrides.
#include <chrono>
#include <cstdio>

#include <iostream>

#include "aha/core/interrupt.h"
#include "aha/grpo/pretrain.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_pretrain(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string config;
  std::vector<std::string> sets;
  bool resume = false, dry = false;
  int64_t max_steps = 0;
  desc.add_options()
      ("config", po::value(&config)->required(), "pretraining config (JSON): see docs/config.md")
      ("set", po::value(&sets)->composing(), "override a key: --set steps=200 (repeatable)")
      ("resume", po::bool_switch(&resume), "continue from <output_dir>/last")
      ("max-steps", po::value(&max_steps)->default_value(0), "stop after N more steps (0: all)")
      ("dry-run", po::bool_switch(&dry), "check the config and print it resolved; train nothing");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha pretrain --config pretrain.json [--set k=v] [--resume] "
                     "[--max-steps N] [--dry-run]")) {
    return 0;
  }
  if (max_steps < 0) fail("--max-steps must be >= 0");
  Json raw = load_json_file(config);
  apply_overrides(raw, sets);
  grpo::PretrainConfig cfg = grpo::PretrainConfig::from_json(raw);
  if (dry) {
    std::cout << Json{{"ok", true}, {"config", raw}}.dump() << std::endl;
    return 0;
  }
  install_interrupt_handler();
  auto start = std::chrono::steady_clock::now();
  int64_t first = -1;  // the step before this process's first: ETA from this process's rate
  grpo::pretrain(cfg, raw, resume, [&](const grpo::PretrainReport& r) {
    if (first < 0) {
      first = r.step - 1;
      start = std::chrono::steady_clock::now();
    }
    if (r.step % 10 != 0 && r.step != r.total_steps) return;
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const int64_t done = std::max<int64_t>(1, r.step - first - 1);
    int eta = static_cast<int>(el / double(done) * double(r.total_steps - r.step));
    std::fprintf(stderr, "[pretrain] step %lld/%lld  loss %.4f  %.0f tok/s  ETA %d:%02d\n",
                 static_cast<long long>(r.step), static_cast<long long>(r.total_steps),
                 r.metrics.value("loss", 0.0), r.metrics.value("tokens_per_s", 0.0), eta / 60,
                 eta % 60);
    if (r.metrics.contains("alltoall_bytes")) {  // under mpirun: what rank 0 sent this step
      std::fprintf(stderr,
                   "[pretrain] rank 0 sent %.1f kB all-to-all, %.1f kB allreduce\n",
                   r.metrics.value("alltoall_bytes", 0.0) / 1e3,
                   r.metrics.value("allreduce_bytes", 0.0) / 1e3);
    }
  }, max_steps);
  return 0;
}

}  // namespace aha::cli
