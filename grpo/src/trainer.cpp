// Trainer setup, checkpoints and resume.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <regex>

#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "aha/grpo/data.h"
#include "aha/runlog/report.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace fs = std::filesystem;

namespace {

// The newest checkpoint-N directory in dir, or "".
std::string latest_checkpoint(const std::string& dir) {
  std::string best;
  int64_t best_n = -1;
  std::regex re("checkpoint-([0-9]+)");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, re) || !fs::exists(e.path() / "trainer_state.json")) continue;
    int64_t n = std::stoll(m[1]);
    if (n > best_n) {
      best_n = n;
      best = e.path().string();
    }
  }
  return best;
}

RolloutLimits rollout_limits(const policy::Model<float>& m, const GrpoConfig& g) {
  const policy::ModelConfig& c = m.config();
  RolloutLimits lim;
  lim.vocab = c.vocab_size;
  lim.max_positions = m.rope().max_pos();
  lim.experts = c.n_routed_experts;
  lim.experts_per_tok = c.num_experts_per_tok;
  for (int l = 0; l < c.num_hidden_layers; ++l) lim.moe_layers += c.is_moe_layer(l);
  (void)g;
  return lim;
}

}  // namespace

Trainer::Trainer(const TrainConfig& cfg, const Json& raw, bool resume,
                 const rewards::RewardRegistry* registry)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = cfg;
  s.raw = raw;
  s.threads = std::make_unique<ThreadLimit>(cfg.grpo.threads);
  // A rollout file carries ids and rewards: no text, so no tokenizer is needed.
  const bool has_tok = fs::exists(fs::path(cfg.model) / "tokenizer.json");
  if (!has_tok && cfg.rollouts.empty()) {
    fail("the model ", cfg.model, " has no tokenizer.json (GRPO needs text for the rewards)");
  }
  if (has_tok) s.tok = std::make_unique<policy::Tokenizer>(policy::Tokenizer::load(cfg.model));
  s.policy = policy::load_model<float>(cfg.model);
  if (cfg.grpo.beta > 0 || !cfg.reference.empty()) {
    s.ref = policy::load_model<float>(cfg.reference.empty() ? cfg.model : cfg.reference);
    if (s.ref->params().size() != s.policy->params().size()) {
      fail("the reference model's architecture differs from the policy's");
    }
  }
  if (cfg.rollouts.empty()) {
    s.data = load_examples(cfg.data, "train", cfg.seed);
  } else {
    s.file_rollouts = read_rollout_file(cfg.rollouts, rollout_limits(*s.policy, cfg.grpo));
    spdlog::info("{}: {} rollouts; every step learns from all of them", cfg.rollouts, s.file_rollouts.size());
  }
  s.cursor = std::make_unique<datasets::DataCursor>(static_cast<int64_t>(s.data.size()), cfg.seed);
  std::string templ = cfg.data.value("template", "r1_zero");
  s.templ = std::make_unique<datasets::PromptTemplate>(datasets::PromptTemplate::from_config(templ));
  s.rewards = rewards::RewardSet::from_json(
      cfg.rewards, registry != nullptr ? *registry : rewards::builtin_registry());
  s.acc_label = cfg.accuracy_reward.empty() ? s.rewards.labels().front() : cfg.accuracy_reward;
  auto labels = s.rewards.labels();
  if (std::find(labels.begin(), labels.end(), s.acc_label) == labels.end()) {
    fail("accuracy_reward '", s.acc_label, "' is not one of the configured rewards");
  }
  s.opt = std::make_unique<policy::Optimizer<float>>(s.policy->table(), cfg.optimizer);
  fs::create_directories(cfg.output_dir);
  const std::string db_path = (fs::path(cfg.output_dir) / "run.db").string();
  std::string ckpt = resume ? latest_checkpoint(cfg.output_dir) : "";
  if (resume && !fs::exists(db_path)) fail("cannot resume: no run.db in ", cfg.output_dir);
  s.db = std::make_unique<runlog::RunDb>(db_path, "grpo", raw, cfg.model, resume);
  if (!ckpt.empty()) {
    s.load_checkpoint(ckpt);
    s.db->rewind_to(s.step);
    spdlog::info("resumed from {} (step {})", ckpt, s.step);
  } else if (resume) {
    s.db->rewind_to(0);
  }
}

Trainer::~Trainer() = default;

int64_t Trainer::step() const { return s_->step; }
const std::string& Trainer::run_db_path() const { return s_->db->path(); }

void Trainer::State::save_checkpoint() {
  const std::string dir = (fs::path(cfg.output_dir) / ("checkpoint-" + std::to_string(step))).string();
  policy::SaveOptions so;
  so.copy_tokenizer_from = cfg.model;
  policy::save_model(*policy, dir, so);
  // Training state goes in after the weights: a checkpoint without trainer_state.json is
  // incomplete and never resumed from.
  opt->save((fs::path(dir) / "optimizer.safetensors").string());
  if (ref_changed) policy::save_model(*ref, (fs::path(dir) / "reference").string());
  Json state = {{"step", step}, {"cursor", cursor->state()}, {"nan_streak", nan_streak},
                {"ref_changed", ref_changed}};
  save_json_file((fs::path(dir) / "trainer_state.json").string(), state);
  db->add_checkpoint(step, dir);
}

void Trainer::State::load_checkpoint(const std::string& dir) {
  Json state = load_json_file((fs::path(dir) / "trainer_state.json").string());
  auto loaded = policy::load_model<float>(dir);
  if (loaded->params().size() != policy->params().size()) fail(dir, ": architecture differs");
  policy->params() = loaded->params();
  opt->load((fs::path(dir) / "optimizer.safetensors").string());
  step = state.at("step").get<int64_t>();
  cursor->restore(state.at("cursor"));
  nan_streak = state.value("nan_streak", 0);
  ref_changed = state.value("ref_changed", false);
  if (ref_changed && ref) ref->params() = policy::load_model<float>((fs::path(dir) / "reference").string())->params();
}

void Trainer::run(const std::function<void(const StepReport&)>& on_step, int64_t max_steps) {
  State& s = *s_;
  const int64_t stop_at = max_steps > 0 ? std::min<int64_t>(s.cfg.grpo.steps, s.step + max_steps)
                                        : s.cfg.grpo.steps;
  try {
    while (s.step < stop_at) {
      Json metrics = s.run_step();
      if (on_step) on_step(StepReport{s.step, s.cfg.grpo.steps, metrics});
      const bool last = s.step == s.cfg.grpo.steps;
      if (last || (s.cfg.grpo.save_every > 0 && s.step % s.cfg.grpo.save_every == 0) ||
          s.step == stop_at) {
        s.save_checkpoint();
      }
      if (s.cfg.grpo.report_every > 0 && (s.step % s.cfg.grpo.report_every == 0 || last)) {
        // A report is a convenience: failing to write one never ends the run.
        try {
          runlog::write_report({s.db->path()}, (fs::path(s.cfg.output_dir) / "report.html").string());
        } catch (const std::exception& e) {
          spdlog::warn("report not written: {}", e.what());
        }
      }
    }
    s.db->finish(s.step >= s.cfg.grpo.steps ? "finished" : "paused");
  } catch (const std::exception& e) {
    s.db->event(s.step, "error", "failed", e.what());
    s.db->finish("failed");
    throw;
  }
}

}  // namespace aha::grpo
