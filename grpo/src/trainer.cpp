// Trainer setup, checkpoints and resume.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "aha/core/version.h"
#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/esft.h"
#include "aha/datasets/source.h"
#include "aha/tokenizer/chat_template.h"
#include "aha/grpo/eval.h"
#include "aha/runlog/report.h"
#include "aha/train/run_loop.h"
#include "trainer_state.h"

namespace aha::grpo {

namespace fs = std::filesystem;

namespace {

// For the data-parallel tests: AHA_FAULT=exit:RANK:STEP ends that rank's process at the start of
// that step, hang:RANK:STEP makes it stop responding; the job must end with an error either way.
void inject_fault(int64_t step) {
  const char* f = std::getenv("AHA_FAULT");
  if (f == nullptr) return;
  char kind[8] = {0};
  int rank = -1;
  long long at = -1;
  if (std::sscanf(f, "%7[a-z]:%d:%lld", kind, &rank, &at) != 3 || rank != dist::rank() || at != step) return;
  if (std::string(kind) == "exit") std::_Exit(3);
  if (std::string(kind) == "hang") {
    while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

Trainer::Trainer(const TrainConfig& cfg, const Json& raw, bool resume,
                 const rewards::RewardRegistry* registry)
    : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.cfg = cfg;
  s.entropy_coef = cfg.grpo.entropy_coef;
  s.raw = raw;
  s.threads = std::make_unique<ThreadLimit>(cfg.grpo.threads);
  s.precision = std::make_unique<MatmulPrecisionScope>(cfg.precision);
  // A rollout file carries ids and rewards: no text, so no tokenizer is needed.
  const bool has_tok = fs::exists(fs::path(cfg.model) / "tokenizer.json");
  if (!has_tok && cfg.rollouts.empty()) {
    fail("the model ", cfg.model, " has no tokenizer.json (GRPO needs text for the rewards)");
  }
  if (has_tok) s.tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(cfg.model));
  s.load_models();
  s.load_data();
  s.cursor = std::make_unique<datasets::DataCursor>(static_cast<int64_t>(s.data.size()), cfg.seed);
  std::string templ = cfg.data.value("template", "r1_zero");
  const bool template_changed = warn_on_template_change(cfg.model, templ);
  s.templ = std::make_unique<datasets::PromptTemplate>(datasets::PromptTemplate::from_config(
      templ, [&] { return tokenizer::chat_prompt_renderer(cfg.model, s.tok.get(), cfg.data); }));
  s.rewards = rewards::RewardSet::from_json(
      cfg.rewards, registry != nullptr ? *registry : rewards::builtin_registry());
  s.acc_label = cfg.accuracy_reward.empty() ? s.rewards.labels().front() : cfg.accuracy_reward;
  auto labels = s.rewards.labels();
  if (std::find(labels.begin(), labels.end(), s.acc_label) == labels.end()) {
    fail("accuracy_reward '", s.acc_label, "' is not one of the configured rewards");
  }
  s.opt = std::make_unique<policy::Optimizer<float>>(s.policy->table(), cfg.optimizer);
  // Data parallel: every rank reads a resume point from the shared output_dir, whatever the
  // number of ranks that wrote it.
  const std::string ckpt = resume ? train::Checkpointer::latest(cfg.output_dir) : "";
  s.db = train::open_run_db(cfg.output_dir, "grpo", raw, cfg.model, resume);
  if (s.db && template_changed) {
    s.db->event(0, "warn", "template",
                "data.template differs from the template the base was pretrained with "
                "(aha_data.json in the model directory)");
  }
  if (s.db && dist::active()) {
    s.db->event(0, "info", "ranks",
                std::to_string(dist::size()) +
                    (cfg.parallel.expert_parallel()
                         ? " ranks, the routed experts sharded over them (parallel.ep)"
                         : " data-parallel ranks"));
  }
  s.update = std::make_unique<train::UpdateStep>(*s.policy, *s.opt, cfg.optimizer.max_grad_norm,
                                                 cfg.grpo.max_nan_skips, s.db.get());
  s.checkpoints = std::make_unique<train::Checkpointer>(
      cfg.output_dir, cfg.model, s.db.get(),
      train::TrainedState{*s.policy, *s.opt, *s.cursor, *s.update});
  s.setup_esft(resume);
  if (resume) s.restore(s.checkpoints->resume(ckpt, s.step), ckpt);
  if (s.db) s.log_start(resume);
  s.start_queue(ckpt);
}

// The policy (its own experts only under parallel.ep, for rollouts, scoring and updates alike)
// and the reference, where the loss or the reward needs one.
void Trainer::State::load_models() {
  // parallel.ep: each rank loads and keeps only its own experts, for rollouts, scoring and
  // updates alike (every forward runs in lockstep over the ranks).
  policy = train::load_policy(cfg.model, cfg.lora, cfg.seed,
                              train::expert_parallel_for(cfg.parallel, cfg.model, true));
  if (cfg.grpo.aux_loss_weight > 0) train::check_device_balance(cfg.parallel, policy->config());
  // The device-level balance losses take their statistics over the whole minibatch's tokens.
  if (cfg.grpo.micro_batch_size > 0 && policy->config().has_device_balance()) {
    fail("grpo.micro_batch_size does not support the device-level balance losses of ", cfg.model,
         "/config.json (device_balance_alpha, comm_balance_alpha) yet: drop one of them");
  }
  if (cfg.grpo.mtp_weight > 0 && policy->mtp() == nullptr) {
    fail("grpo.mtp_weight needs a policy with an MTP module (num_nextn_predict_layers: 1 in ",
         cfg.model, "/config.json)");
  }
  const bool wants_ref = cfg.grpo.beta > 0 || cfg.grpo.kl_reward_coef > 0 || !cfg.reference.empty();
  // Under LoRA the reference is the base itself: the policy with its adapters off, so no second
  // copy of the base (unless the reference moves by reset or EMA).
  ref_is_base = wants_ref && cfg.lora.on() && cfg.reference.empty() &&
                cfg.grpo.ref_reset_every == 0 && cfg.grpo.ref_ema == 0;
  if (wants_ref && !ref_is_base) {
    const std::string ref_dir = cfg.reference.empty() ? cfg.model : cfg.reference;
    ref = policy::load_model<float>(ref_dir, policy::LoraConfig{},
                                    train::expert_parallel_for(cfg.parallel, ref_dir, true));
    if (ref->params().size() != policy->adapter_begin()) {
      fail("the reference model's architecture differs from the policy's");
    }
  }
}

// The prompts (train and eval) or, with a rollout file, its rollouts.
void Trainer::State::load_data() {
  if (cfg.rollouts.empty()) {
    data = datasets::load_examples(cfg.data, "train", cfg.seed);
    if (cfg.grpo.eval_every > 0) {
      eval_data = datasets::load_examples(cfg.data, "eval", cfg.seed);
      if (static_cast<int64_t>(eval_data.size()) > cfg.grpo.eval_size) {
        eval_data.resize(static_cast<size_t>(cfg.grpo.eval_size));
      }
    }
  } else {
    file_rollouts = read_rollout_file(
        cfg.rollouts, rollout_limits(policy->config(), policy->rope().max_pos()));
    spdlog::info("{}: {} rollouts; every step learns from all of them", cfg.rollouts,
                 file_rollouts.size());
  }
}

void Trainer::State::log_start(bool resume) {
  // What this run is, in one place: on stderr for the user and as a "start" event in run.db.
  const policy::ModelConfig& mc = policy->config();
  Json summary = {{"aha", version()},
                  {"model", cfg.model},
                  {"model_type", mc.type_name()},
                  {"parameters", policy->params().size()},
                  {"reference", !has_ref()     ? "none"
                                : ref_is_base ? cfg.model + " (the policy without its adapters)"
                                : cfg.reference.empty() ? cfg.model : cfg.reference},
                  {"data", cfg.rollouts.empty() ? cfg.data.value("train", "") : cfg.rollouts},
                  {"examples", cfg.rollouts.empty() ? data.size() : file_rollouts.size()},
                  {"template", cfg.data.value("template", "r1_zero")},
                  {"rewards", rewards.labels()},
                  {"steps", cfg.grpo.steps},
                  {"from_step", step},
                  {"output_dir", cfg.output_dir},
                  {"resumed", resume}};
  spdlog::info("aha {} | {} ({} parameters) | {} examples from {} | rewards {} | reference {} | "
               "steps {}..{} | {}",
               version(), cfg.model, policy->params().size(), summary["examples"].get<size_t>(),
               summary["data"].get<std::string>(), summary["rewards"].dump(),
               summary["reference"].get<std::string>(), step + 1, cfg.grpo.steps, cfg.output_dir);
  db->event(step, "info", "start", summary.dump());
}

void Trainer::State::log_event(int64_t at, const std::string& level, const std::string& kind,
                               const std::string& msg) {
  if (db) {
    db->event(at, level, kind, msg);
  } else {
    spdlog::warn("rank {}: {}: {}", dist::rank(), kind, msg);
  }
}

void Trainer::State::setup_esft(bool resume) {
  const Json& e = cfg.grpo.esft;
  if (e.is_null()) return;
  // The selection is made once, on the initial policy, and kept in output_dir so that a resume
  // trains the same experts.
  const fs::path file = fs::path(cfg.output_dir) / "esft_selection.json";
  policy::EsftSelection sel;
  if (resume && fs::exists(file)) {
    sel = policy::EsftSelection::from_json(load_json_file(file.string()));
  } else {
    if (data.empty()) fail("grpo.esft scores experts on the training prompts: it needs data.train");
    const int n = std::min<int>(e.value("prompts", 64), static_cast<int>(data.size()));
    std::vector<std::vector<int32_t>> seqs;
    for (int i = 0; i < n; ++i) seqs.push_back(tok->encode(templ->render_row(data[i].row), true));
    std::vector<policy::Batch> batches;
    for (size_t a = 0; a < seqs.size(); a += 16) {
      batches.push_back(policy::Batch::from_sequences(
          std::vector<std::vector<int32_t>>(seqs.begin() + a, seqs.begin() + std::min(seqs.size(), a + 16))));
    }
    auto scores = policy::expert_scores(*policy, batches, policy::parse_esft_metric(e.value("metric", "gate")));
    sel = policy::select_experts(scores, e.value("share", 0.9), e.value("include_shared", true));
    if (dist::rank() == 0) save_json_file(file.string(), sel.to_json());
  }
  std::vector<uint8_t> trainable = policy::trainable_mask(*policy, sel);
  const Json report = policy::esft_report(policy->table(), trainable).to_json();
  update->set_trainable(std::move(trainable));
  spdlog::info("ESFT: {}", report.dump());
  log_event(0, "info", "esft", report.dump());
}

Trainer::~Trainer() = default;

int64_t Trainer::step() const { return s_->step; }
const policy::Model<float>& Trainer::policy() const { return *s_->policy; }
std::string Trainer::run_db_path() const {
  return (fs::path(s_->cfg.output_dir) / "run.db").string();
}

void Trainer::State::save_checkpoint() {
  const Json own = {
      {"ref_changed", ref_changed}, {"best_eval", best_eval}, {"best_step", best_step},
      {"entropy_coef", entropy_coef}};
  // The steps sampled ahead go with the checkpoint (their weights are gone from it); waiting
  // for them also leaves the sampler idle, so the data cursor it advances is saved as it stands.
  const std::vector<SampledBatch> ahead = queue ? queue->pending() : std::vector<SampledBatch>{};
  checkpoints->save("", step, own, [&](const fs::path& dir) {
    if (ref_changed) policy::save_model(*ref, (dir / "reference").string());
    if (!queue) return;
    Json q = Json::array();
    for (const SampledBatch& b : ahead) q.push_back(batch_to_json(b));
    save_json_file((dir / "rollout_queue.json").string(), q);
  });
  checkpoints->prune(cfg.grpo.keep_checkpoints, best_step);  // the best by eval stays
}

void Trainer::State::restore(const Json& state, const std::string& dir) {
  if (state.is_null()) return;
  ref_changed = state.value("ref_changed", false);
  best_eval = state.value("best_eval", -1.0);
  best_step = state.value("best_step", int64_t{-1});
  entropy_coef = state.value("entropy_coef", cfg.grpo.entropy_coef);
  if (ref_changed && ref) ref->params() = policy::load_model<float>((fs::path(dir) / "reference").string())->params();
}

void Trainer::run(const std::function<void(const StepReport&)>& on_step, int64_t max_steps) {
  State& s = *s_;
  const GrpoConfig& g = s.cfg.grpo;
  train::StepLoop loop(g.steps, g.save_every, max_steps, s.step);
  train::fail_run_on_error(s.db.get(), s.step, [&] {
    while (loop.more(s.step)) {
      inject_fault(s.step + 1);
      Json metrics = s.run_step();
      const bool save = loop.save_after(s.step);
      if (on_step) on_step(StepReport{s.step, g.steps, metrics});
      if (save) s.save_checkpoint();
      if (s.db && g.report_every > 0 && (s.step % g.report_every == 0 || s.step == g.steps)) {
        // A report is a convenience: failing to write one never ends the run.
        try {
          runlog::write_report({s.db->path()}, (fs::path(s.cfg.output_dir) / "report.html").string());
        } catch (const std::exception& e) {
          spdlog::warn("report not written: {}", e.what());
        }
      }
    }
    if (s.db) s.db->finish(s.step >= g.steps ? "finished" : "paused");
  });
}

}  // namespace aha::grpo
