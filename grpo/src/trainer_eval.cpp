// Evaluation during training (grpo.eval_every).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "aha/core/dist.h"
#include "aha/grpo/eval.h"
#include "trainer_state.h"

namespace aha::grpo {

void Trainer::State::run_eval(Json& m) {
  const GrpoConfig& g = cfg.grpo;
  EvalOptions o;
  o.model = cfg.model;  // where data.template "chat" finds the chat template
  o.templ = cfg.data.value("template", "r1_zero");
  o.data = cfg.data;  // the chat template's system prompt and kwargs
  o.reward_set = &rewards;
  o.accuracy_reward = acc_label;
  o.n = g.eval_n;
  o.sampling = cfg.sampling;
  // The same seed at every evaluation: steps differ by the policy only.
  o.seed = cfg.seed * 1000003ULL + 0xE7A1ULL;
  o.warn_truncated = 2.0;  // logged as eval/truncated; the run's own warning covers it
  o.episodes = cfg.episodes.engine_options();
  const auto t0 = std::chrono::steady_clock::now();
  const Json r = evaluate_model(*policy, *tok, eval_data, o);
  const double pass1 = r["pass@1"].get<double>();
  m["eval/pass@1"] = pass1;
  if (g.eval_n > 1) m["eval/pass@" + std::to_string(g.eval_n)] = r["pass@" + std::to_string(g.eval_n)];
  m["eval/completion_len_mean"] = r["completion_len_mean"];
  m["eval/truncated"] = r["truncated"];
  for (const char* k : {"tool_calls_mean", "tool_errors"}) {
    if (r.contains(k)) m[std::string("eval/") + k] = r[k];
  }
  for (const auto& [label, v] : r["rewards"].items()) m["eval/reward/" + label] = v;
  m["time_eval"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (pass1 > best_eval) {
    best_eval = pass1;
    best_step = step;
  }
  if (dist::rank() == 0) {
    spdlog::info("eval at step {}: pass@1 {:.3f} on {} problems (best {:.3f} at step {})", step,
                 pass1, eval_data.size(), best_eval, best_step);
  }
}

}  // namespace aha::grpo
