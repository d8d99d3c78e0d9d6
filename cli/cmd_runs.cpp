// `aha runs DB`: a short summary of a run database.
#include <cmath>
#include <cstdio>
#include <iostream>

#include "aha/runlog/run_db.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

namespace {

std::string num(const Json& v, const char* fmt = "%.4g") {
  if (!v.is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v.get<double>());
  return buf;
}

}  // namespace

int cmd_runs(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string path;
  int last = 10;
  desc.add_options()
      ("db", po::value(&path)->required(), "run database (run.db)")
      ("last", po::value(&last)->default_value(10), "steps to show");
  po::positional_options_description pos;
  pos.add("db", 1);
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha runs RUN.db [--last N]", &pos)) return 0;
  auto db = runlog::RunDb::open_readonly(path);
  for (const Json& r : db->query("SELECT id, kind, model, status, started_at, ended_at, host FROM runs")) {
    std::cout << "run " << r["id"] << "  " << r["kind"].get<std::string>() << "  "
              << r["status"].get<std::string>() << "  started " << r["started_at"].get<std::string>()
              << (r["ended_at"].is_string() ? "  ended " + r["ended_at"].get<std::string>() : "")
              << "\n  model: " << (r["model"].is_string() ? r["model"].get<std::string>() : "-")
              << "\n";
  }
  auto counts = db->query(
      "SELECT (SELECT COUNT(*) FROM steps) AS steps, (SELECT COUNT(*) FROM rollouts) AS rollouts,"
      " (SELECT COUNT(*) FROM checkpoints) AS checkpoints, (SELECT COUNT(*) FROM events WHERE "
      "level != 'info') AS warnings");
  const Json& c = counts[0];
  std::cout << "  " << c["steps"] << " steps, " << c["rollouts"] << " rollouts, "
            << c["checkpoints"] << " checkpoints, " << c["warnings"] << " warnings\n\n";
  // The newest warnings in full: "no_signal" (every group's rewards equal, nothing learned),
  // NaN skips, staleness and the like are what a user must not miss.
  auto warns = db->query(
      "SELECT step, level, kind, message FROM events WHERE level != 'info' ORDER BY id DESC "
      "LIMIT 5");
  for (auto it = warns.rbegin(); it != warns.rend(); ++it) {
    const Json& w = *it;
    std::cout << "  " << w["level"].get<std::string>() << " at step " << w["step"] << " ("
              << w["kind"].get<std::string>() << "): " << w["message"].get<std::string>() << "\n";
  }
  if (!warns.empty()) std::cout << "\n";
  auto steps = db->query(
      "SELECT step, json_extract(metrics, '$.reward_mean') AS reward, json_extract(metrics, "
      "'$.accuracy') AS acc, json_extract(metrics, '$.kl') AS kl, json_extract(metrics, "
      "'$.loss') AS loss, json_extract(metrics, '$.completion_len_mean') AS len, "
      "json_extract(metrics, '$.tokens_per_s') AS tps, json_extract(metrics, "
      "'$.frac_reward_zero_std') AS flat FROM steps ORDER BY step DESC LIMIT " +
      std::to_string(std::max(1, last)));
  // flat: the share of groups whose rewards were all equal (no advantage, nothing to learn).
  std::printf("%6s %9s %9s %9s %9s %8s %9s %6s\n", "step", "reward", "accuracy", "kl", "loss",
              "len", "tok/s", "flat");
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    const Json& s = *it;
    std::printf("%6lld %9s %9s %9s %9s %8s %9s %6s\n",
                static_cast<long long>(s["step"].get<int64_t>()), num(s["reward"]).c_str(),
                num(s["acc"]).c_str(), num(s["kl"]).c_str(), num(s["loss"]).c_str(),
                num(s["len"], "%.1f").c_str(), num(s["tps"], "%.0f").c_str(),
                num(s["flat"], "%.2f").c_str());
  }
  return 0;
}

}  // namespace aha::cli
