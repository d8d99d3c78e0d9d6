// `aha distill sample` (rejection sampling from a teacher into SFT JSONL) and `aha distill train`
// (SFT / logit-KD / on-policy distillation of a student, ESFT of an MoE): JSON config + --set.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "aha/core/interrupt.h"
#include "aha/distill/sample.h"
#include "aha/distill/train.h"
#include "commands.h"
#include "options.h"
#include "progress.h"

namespace aha::cli {

int cmd_distill(const Args& args) {
  std::cout << "usage: aha distill sample --config sample.json [--set k=v ...]\n"
               "       aha distill train --config distill.json [--set k=v ...] [--resume] "
               "[--max-steps N]\n(docs/distill.md)\n";
  return args.empty() || args[0] == "--help" || args[0] == "-h" ? 0 : 2;
}

int cmd_distill_sample(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string config;
  std::vector<std::string> sets;
  desc.add_options()("config", po::value(&config)->required(),
                     "sampling config (JSON): see docs/config.md")(
      "set", po::value(&sets)->composing(), "override a key: --set samples_per_prompt=8");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha distill sample --config sample.json [--set key=value ...]\n"
                     "The teacher writes K completions per prompt; correct and readable ones are\n"
                     "appended to the SFT JSONL `output` (resumable: rerun the same command).")) {
    return 0;
  }
  Json raw = load_json_file(config);
  apply_overrides(raw, sets);
  distill::SampleConfig cfg = distill::SampleConfig::from_json(raw);
  ProgressLine progress("distill sample", "prompts");
  int64_t first = -1;
  distill::SampleStats st =
      distill::run_sample(cfg, [&](const distill::SampleStats& s, int64_t total) {
        if (first < 0) first = s.prompts - cfg.prompts_per_chunk;
        progress.update(s.prompts, total, double(s.prompts - std::max<int64_t>(first, 0)));
      });
  progress.finish();
  std::cout << st.to_json().dump() << std::endl;
  return 0;
}

int cmd_distill_train(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string config;
  std::vector<std::string> sets;
  bool resume = false, dry = false;
  int64_t max_steps = 0;
  desc.add_options()("config", po::value(&config)->required(),
                     "distillation config (JSON): see docs/config.md")(
      "set", po::value(&sets)->composing(), "override a key: --set kd.weight=1 (repeatable)")(
      "resume", po::bool_switch(&resume), "continue from the latest checkpoint in output_dir")(
      "max-steps", po::value(&max_steps)->default_value(0), "stop after N more steps (0: all)")(
      "dry-run", po::bool_switch(&dry), "check the config and print it resolved; train nothing");
  po::variables_map vm;
  if (!parse_options(
          args, desc, vm,
          "usage: aha distill train --config distill.json [--set key=value ...] [--resume]\n"
          "SFT of a student on completion tokens, optionally plus logit KD from the\n"
          "teacher; ESFT for MoE students; logs to <output_dir>/run.db, the student is\n"
          "saved in HF layout in <output_dir>/final.")) {
    return 0;
  }
  Json raw = load_json_file(config);
  apply_overrides(raw, sets);
  distill::DistillConfig cfg = distill::DistillConfig::from_json(raw);
  if (dry) {
    std::cout << Json{{"ok", true}, {"config", raw}}.dump() << std::endl;
    return 0;
  }
  install_interrupt_handler();
  auto start = std::chrono::steady_clock::now();
  int64_t first = -1;
  Json last =
      distill::run_distill(cfg, raw, resume, max_steps, [&](const distill::DistillReport& r) {
        if (first < 0) first = r.step - 1;
        if (r.step % 10 != 0 && r.step != r.total_steps) return;
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        int eta = static_cast<int>(el / double(r.step - first) * double(r.total_steps - r.step));
        const Json& m = r.metrics;
        std::fprintf(
            stderr,
            "[distill] step %lld/%lld  loss %.4f  nll %.4f  kl %.4f  %.0f tok/s  ETA %d:%02d\n",
            static_cast<long long>(r.step), static_cast<long long>(r.total_steps),
            m.value("loss", 0.0), m.value("nll", 0.0), m.value("kl", 0.0),
            m.value("tokens_per_s", 0.0), eta / 60, eta % 60);
      });
  std::cout << last.dump() << std::endl;
  return 0;
}

}  // namespace aha::cli
