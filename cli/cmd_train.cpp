// `aha train`: GRPO from a JSON config plus --set overrides, with a live progress line.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "aha/core/interrupt.h"
#include "aha/core/dist.h"
#include "aha/grpo/trainer.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_train(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string config;
  std::vector<std::string> sets;
  std::string rollouts;
  bool resume = false, dry = false;
  int64_t max_steps = 0;
  desc.add_options()
      ("config", po::value(&config)->required(), "run config (JSON): see docs/config.md")
      ("set", po::value(&sets)->composing(), "override a key: --set grpo.beta=0.001 (repeatable)")
      ("rollouts", po::value(&rollouts), "learn from this rollout file instead of sampling (docs/rollouts.md)")
      ("resume", po::bool_switch(&resume), "continue from the latest checkpoint in output_dir")
      ("dry-run", po::bool_switch(&dry), "check config, tokenizer, data and rewards; load no weights")
      ("max-steps", po::value(&max_steps)->default_value(0), "stop after N more steps (0: all)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha train --config run.json [--set key=value ...] [--resume]\n"
                     "GRPO: G completions per prompt, rule-based rewards, group-relative\n"
                     "advantages, clipped KL-regularised updates; logs to <output_dir>/run.db.")) {
    return 0;
  }
  Json raw = load_json_file(config);
  apply_overrides(raw, sets);
  if (!rollouts.empty()) raw["rollouts"] = rollouts;
  grpo::TrainConfig cfg = grpo::TrainConfig::from_json(raw);
  if (dry) {
    std::cout << grpo::dry_run(cfg).dump() << std::endl;
    return 0;
  }
  grpo::Trainer trainer(cfg, raw, resume);
  install_interrupt_handler();
  auto start = std::chrono::steady_clock::now();
  const int64_t first = trainer.step();
  Json first_metrics, last_metrics;
  int flat_steps = 0;  // steps in a row where every group's rewards were equal
  trainer.run(
      [&](const grpo::StepReport& r) {
        if (dist::rank() != 0) return;  // one progress line per job, not per rank
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double per = el / double(r.step - first);
        int eta = static_cast<int>(per * double(r.total_steps - r.step));
        const Json& m = r.metrics;
        if (first_metrics.is_null()) first_metrics = m;
        last_metrics = m;
        flat_steps = m.value("frac_reward_zero_std", 0.0) >= 1.0 ? flat_steps + 1 : 0;
        // The trainer's own warning comes after 5 such steps; the line says it from the third.
        const std::string no_signal =
            flat_steps >= 3 ? "  NO SIGNAL: all groups' rewards equal for " +
                                  std::to_string(flat_steps) + " steps"
                            : "";
        std::fprintf(stderr,
                     "[train] step %lld/%lld  reward %.3f  acc %.3f  kl %.4f  len %.1f  "
                     "%.0f tok/s  %.1fs/step  ETA %d:%02d:%02d%s\n",
                     static_cast<long long>(r.step), static_cast<long long>(r.total_steps),
                     m.value("reward_mean", 0.0), m.value("accuracy", 0.0), m.value("kl", 0.0),
                     m.value("completion_len_mean", 0.0), m.value("tokens_per_s", 0.0), per,
                     eta / 3600, (eta / 60) % 60, eta % 60, no_signal.c_str());
      },
      max_steps);
  if (dist::rank() == 0) {
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string db = trainer.run_db_path();
    if (!last_metrics.is_null()) {
      spdlog::info("{} at step {}/{} after {:.0f}s: reward {:.3f} -> {:.3f}, accuracy {:.3f} -> {:.3f}",
                   trainer.step() >= cfg.grpo.steps ? "finished" : "paused", trainer.step(),
                   cfg.grpo.steps, secs, first_metrics.value("reward_mean", 0.0),
                   last_metrics.value("reward_mean", 0.0), first_metrics.value("accuracy", 0.0),
                   last_metrics.value("accuracy", 0.0));
    }
    spdlog::info("run database: {}   summary: aha runs {}   report: aha report {} --out report.html",
                 db, db, db);
    if (trainer.step() < cfg.grpo.steps) {
      spdlog::info("continue with: aha train --config {} --resume (and the same --set options)", config);
    }
  }
  return 0;
}

}  // namespace aha::cli
