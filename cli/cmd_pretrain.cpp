// `aha pretrain`: next-token training from a JSON config plus --set overrides.
#include <chrono>
#include <cstdio>

#include "aha/grpo/pretrain.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_pretrain(const Args& args) {
  po::options_description desc("options");
  std::string config;
  std::vector<std::string> sets;
  bool resume = false;
  desc.add_options()
      ("config", po::value(&config)->required(), "pretraining config (JSON): see docs/config.md")
      ("set", po::value(&sets)->composing(), "override a key: --set steps=200 (repeatable)")
      ("resume", po::bool_switch(&resume), "continue from <output_dir>/last");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha pretrain --config pretrain.json [--set k=v] [--resume]")) {
    return 0;
  }
  Json raw = load_json_file(config);
  apply_overrides(raw, sets);
  grpo::PretrainConfig cfg = grpo::PretrainConfig::from_json(raw);
  auto start = std::chrono::steady_clock::now();
  grpo::pretrain(cfg, raw, resume, [&](const grpo::PretrainReport& r) {
    if (r.step % 10 != 0 && r.step != r.total_steps) return;
    double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int eta = static_cast<int>(el / double(r.step) * double(r.total_steps - r.step));
    std::fprintf(stderr, "[pretrain] step %lld/%lld  loss %.4f  %.0f tok/s  ETA %d:%02d\n",
                 static_cast<long long>(r.step), static_cast<long long>(r.total_steps),
                 r.metrics.value("loss", 0.0), r.metrics.value("tokens_per_s", 0.0), eta / 60,
                 eta % 60);
  });
  return 0;
}

}  // namespace aha::cli
