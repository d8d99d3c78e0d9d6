// The distillation trainer: SFT on completion tokens, logit KD (stored or online teacher top-k),
// on-policy KD, ESFT masking; run.db logging, checkpoints and resume.
#include "aha/distill/train.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <filesystem>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/threading.h"
#include "aha/core/version.h"
#include "aha/datasets/dataset.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/esft.h"
#include "aha/policy/mtp.h"
#include "aha/distill/kd_loss.h"
#include "aha/rollout/engine.h"
#include "aha/train/sample_score.h"
#include "aha/runlog/run_db.h"
#include "aha/train/checkpointer.h"
#include "aha/train/run_loop.h"
#include "aha/train/update_step.h"
#include "sft_data.h"

namespace aha::distill {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// One training sequence: prompt + completion, and the SFT row it came from (stored top-k).
struct Seq {
  std::vector<int32_t> prompt, completion;
  const SftExample* ex = nullptr;
};

struct Run {
  const DistillConfig& cfg;
  std::string tok_dir;
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<policy::Model<float>> student, teacher;
  // The student's activations, kept from step to step: freed at each step's end they went back
  // to the system and came back as page faults in the next step's forward.
  policy::Activations<float> acts;
  std::vector<SftExample> data;
  std::unique_ptr<datasets::DataCursor> cursor;
  std::unique_ptr<policy::Optimizer<float>> opt;
  policy::EsftSelection selection;  // ESFT: empty when off
  std::unique_ptr<runlog::RunDb> db;
  std::unique_ptr<train::UpdateStep> update;
  std::unique_ptr<train::Checkpointer> checkpoints;
  int64_t step = 0;

  explicit Run(const DistillConfig& c) : cfg(c) {}
  void load_models();
  std::vector<Seq> next_batch();
  std::vector<Seq> on_policy_batch();
  Json train_on(const std::vector<Seq>& drawn, bool sft, bool local = false);
  // This rank's loss sums (the KL term already a mean over all ranks' completion tokens).
  struct ShareSums {
    double nll = 0, kl = 0, mtp_nll = 0;
  };
  ShareSums train_share(const std::vector<Seq>& seqs, const policy::Batch& batch,
                        const std::vector<float>& is_comp, int64_t n_comp, double mtp_rows,
                        bool sft);
  std::vector<float> mtp_term(const policy::Activations<float>& acts,
                              const std::vector<float>& is_comp, double mtp_rows, double& nll);
  void open_run(const Json& raw, bool resume);
  void setup_esft();
  void log_start(bool resume);
  void save_checkpoint();
};

bool has_tokenizer(const std::string& dir) {
  return !dir.empty() && fs::exists(fs::path(dir) / "tokenizer.json");
}

void Run::load_models() {
  for (const std::string& d : {cfg.student, cfg.tokenizer, cfg.teacher}) {
    if (has_tokenizer(d)) {
      tok_dir = d;
      break;
    }
  }
  if (tok_dir.empty()) fail("no tokenizer.json in the student, tokenizer or teacher directory");
  tok = std::make_unique<tokenizer::Tokenizer>(tokenizer::Tokenizer::load(tok_dir));
  if (cfg.parallel.expert_parallel() && (cfg.lora.on() || cfg.kd.on_policy || cfg.esft.enabled)) {
    fail("parallel.ep shards the student's experts: it does not support LoRA, kd.on_policy ",
         "(sampling runs the whole student) or esft yet");
  }
  if (!cfg.student.empty()) {
    student = train::load_policy(cfg.student, cfg.lora, cfg.seed,
                                 train::expert_parallel_for(cfg.parallel, cfg.student, true));
  } else {
    // The teacher's (possibly padded) vocabulary when there is one, so logit KD can line up.
    int vocab = tok->vocab_size();
    if (!cfg.teacher.empty()) {
      vocab = std::max(
          vocab,
          policy::ModelConfig::load((fs::path(cfg.teacher) / "config.json").string()).vocab_size);
    }
    Json j = cfg.student_config;
    if (j.is_string()) {
      const std::string s = j.get<std::string>();
      j = (s == "llama" || s == "qwen2") ? student_preset(s, vocab) : load_json_file(s);
    }
    if (!j.contains("vocab_size")) j["vocab_size"] = vocab;
    if (!j.contains("bos_token_id") && tok->bos_id()) j["bos_token_id"] = *tok->bos_id();
    if (!j.contains("eos_token_id") && tok->eos_id()) j["eos_token_id"] = *tok->eos_id();
    policy::ModelConfig sc = policy::ModelConfig::from_json(j);
    sc.ep = train::expert_parallel_for(cfg.parallel, sc, true);
    student = std::make_unique<policy::Model<float>>(sc);
    student->init_random(cfg.seed, cfg.init_std);
  }
  if (cfg.mtp_weight > 0 && student->mtp() == nullptr) {
    fail("mtp_weight needs a student with an MTP module (num_nextn_predict_layers: 1)");
  }
  if (student->config().vocab_size < tok->vocab_size()) {
    fail("the student's vocabulary (", student->config().vocab_size,
         ") is smaller than the tokenizer's (", tok->vocab_size(), ")");
  }
  if (cfg.kd.weight > 0 && cfg.kd.source == "online") {
    teacher = policy::load_model<float>(cfg.teacher);
    if (teacher->config().vocab_size != student->config().vocab_size) {
      fail("logit distillation needs equal vocabularies: teacher ", teacher->config().vocab_size,
           ", student ", student->config().vocab_size);
    }
  }
}

std::vector<Seq> Run::next_batch() {
  std::vector<Seq> seqs;
  int64_t n = 0;
  while (n < cfg.batch_tokens) {
    const SftExample& ex = data[cursor->next(1)[0]];
    n += static_cast<int64_t>(ex.prompt.size() + ex.completion.size());
    seqs.push_back({ex.prompt, ex.completion, &ex});
  }
  return seqs;
}

// The student completes prompts_per_step prompts of the data; the teacher will score them.
std::vector<Seq> Run::on_policy_batch() {
  std::vector<rollout::Request> reqs;
  const std::vector<int64_t> all = cursor->next(cfg.kd.prompts_per_step);
  const auto [lo, hi] = dist::share(static_cast<int64_t>(all.size()));
  for (int64_t k = lo; k < hi; ++k) {
    const int64_t i = all[k];
    rollout::Request r;
    r.stream = k;  // the global index: ranks sample what one rank would
    r.prompt = data[i].prompt;
    r.params = cfg.kd.sampling;
    r.params.stop_at_eos(tok->eos_id());
    reqs.push_back(std::move(r));
  }
  rollout::EngineOptions eo;
  eo.seed = cfg.seed * 1000003ULL + static_cast<uint64_t>(step);
  train::use_tokenizer(eo, *tok);
  std::vector<Seq> seqs;
  for (auto& c : rollout::Engine(*student, eo).generate(reqs)) {
    if (c.completion_ids.empty() || c.finish_reason == "error") continue;
    seqs.push_back({reqs[c.group].prompt, std::move(c.completion_ids), nullptr});
  }
  double produced = double(seqs.size());
  dist::allreduce_sum(&produced, 1, "on-policy completions");
  if (produced == 0) fail("on-policy step ", step + 1, ": the student produced no completion");
  return seqs;
}

// Teacher targets for every row of the batch: stored top-k, or the teacher's top-k computed now.
SparseTargets kd_targets(const Run& run, const std::vector<Seq>& seqs,
                                 const policy::Batch& batch, const std::vector<float>& row_w) {
  const int64_t n = batch.n_tokens();
  SparseTargets tg;
  if (run.cfg.kd.source == "stored") {
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t start = batch.seq_starts[s], p = static_cast<int64_t>(seqs[s].prompt.size());
      for (int64_t t = start; t < batch.seq_starts[s + 1]; ++t) {
        const int64_t i = t - (start + p - 1);  // completion token this row predicts
        if (row_w[t] == 0.0f || i < 0) {
          tg.add_row(nullptr, nullptr, 0, 0.0f);
          continue;
        }
        const SftExample& ex = *seqs[s].ex;
        const int64_t o = ex.topk_offsets[i];
        tg.add_row(ex.topk_ids.data() + o, ex.topk_logprobs.data() + o,
                   static_cast<int>(ex.topk_offsets[i + 1] - o), row_w[t]);
      }
    }
    return tg;
  }
  policy::ForwardOptions fo;
  fo.keep_activations = false;
  policy::Activations<float> ta;
  run.teacher->forward(batch, fo, ta);
  const int d = run.teacher->config().hidden_size, V = run.teacher->config().vocab_size;
  std::vector<int64_t> rows;
  for (int64_t t = 0; t < n; ++t) {
    if (row_w[t] != 0.0f) rows.push_back(t);
  }
  std::vector<float> h(rows.size() * d), logits(rows.size() * V);
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(ta.h_final.data() + rows[i] * d, d, h.data() + i * d);
  policy::logits_forward(h.data(), run.teacher->params().data() + run.teacher->lm_head_offset(),
                         logits.data(), static_cast<int64_t>(rows.size()), d, V);
  SparseTargets compact;
  append_topk_logprobs(logits.data(), static_cast<int64_t>(rows.size()), V,
                               std::min(run.cfg.kd.top_k, V), nullptr, compact);
  size_t next = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (next < rows.size() && rows[next] == t) {
      const int64_t o = compact.offsets[next];
      tg.add_row(compact.ids.data() + o, compact.logprobs.data() + o,
                 static_cast<int>(compact.offsets[next + 1] - o), row_w[t]);
      ++next;
    } else {
      tg.add_row(nullptr, nullptr, 0, 0.0f);
    }
  }
  return tg;
}

// One optimizer step on seqs: NLL of completion tokens (when sft) plus the KL term. Under MPI
// every rank drew the same sequences (local = false: each trains on its contiguous share) or
// sampled its own share (local = true); normalisers count the completion tokens of all ranks
// and the gradients are summed, so every rank makes the update one rank would.
Json Run::train_on(const std::vector<Seq>& drawn, bool sft, bool local) {
  const auto [lo, hi] = local ? std::pair<int64_t, int64_t>{0, int64_t(drawn.size())}
                              : dist::share(static_cast<int64_t>(drawn.size()));
  const std::vector<Seq> seqs(drawn.begin() + lo, drawn.begin() + hi);
  std::vector<std::vector<int32_t>> full;
  for (const Seq& s : seqs) {
    full.push_back(s.prompt);
    full.back().insert(full.back().end(), s.completion.begin(), s.completion.end());
  }
  policy::Batch batch;
  if (!full.empty()) batch = policy::Batch::from_sequences(full);
  const int64_t n = full.empty() ? 0 : batch.n_tokens();
  // Rows whose next token is a completion token: the only rows in the loss.
  std::vector<float> is_comp(n, 0.0f);
  int64_t local_comp = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    const int64_t first = batch.seq_starts[s] + static_cast<int64_t>(seqs[s].prompt.size()) - 1;
    for (int64_t t = first; t < batch.seq_starts[s + 1] - 1; ++t, ++local_comp) is_comp[t] = 1.0f;
  }
  // MTP rows in the loss: main row t-1 of a row t that predicts a completion token.
  int64_t local_mtp = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int64_t t = batch.seq_starts[s] + 1; t < batch.seq_starts[s + 1]; ++t) local_mtp += is_comp[t] != 0.0f;
  }
  double counts[3] = {double(local_comp), double(n), double(local_mtp)};
  dist::allreduce_sum(counts, 3, "completion token counts");
  const int64_t n_comp = static_cast<int64_t>(counts[0]);
  AHA_CHECK(n_comp > 0, "a batch without completion tokens");
  update->begin();
  double sums[3] = {0, 0, 0};  // nll, kl, MTP nll over this rank's rows
  if (n > 0) {
    const ShareSums s = train_share(seqs, batch, is_comp, n_comp, counts[2], sft);
    sums[0] = s.nll;
    sums[1] = s.kl;
    sums[2] = s.mtp_nll;
  } else if (cfg.parallel.expert_parallel()) {
    // The other ranks' rows still visit this rank's experts, forward and backward.
    policy::Activations<float> idle;
    student->forward_idle(idle);
    student->backward_idle(idle, update->ready());
  } else {
    update->no_backward();
  }
  update->wait();
  dist::allreduce_sum(sums, 3, "loss sums");
  const bool mtp = sft && cfg.mtp_weight > 0;
  const double mtp_loss = mtp ? sums[2] / std::max(1.0, counts[2]) : 0.0;
  const double sft_w = sft ? cfg.kd.sft_weight : 0.0;
  const double nll_mean = sums[0] / double(n_comp), kl = sums[1];
  // The NLL counts only when it is trained on (on-policy KD logs it with weight 0).
  const double loss =
      (sft_w > 0 ? sft_w * nll_mean : 0.0) + cfg.kd.weight * kl + cfg.mtp_weight * mtp_loss;
  const double lr = cfg.schedule.at(step);
  const train::UpdateResult u = update->apply(loss, lr, step + 1);
  return Json{{"loss", loss},
              {"nll", nll_mean},
              {"kl", kl},
              {"lr", lr},
              {"grad_norm", u.grad_norm},
              {"tokens", int64_t(counts[1])},
              {"completion_tokens", n_comp},
              {"mtp_loss", mtp_loss},
              {"epoch", cursor->epoch()}};
}

// Forward and backward of this rank's sequences into the gradients; returns the KL term and
// adds the completion tokens' NLL to nll.
Run::ShareSums Run::train_share(const std::vector<Seq>& seqs, const policy::Batch& batch,
                                const std::vector<float>& is_comp, int64_t n_comp,
                                double mtp_rows, bool sft) {
  ShareSums sums;
  double& nll = sums.nll;
  const int64_t n = batch.n_tokens();
  // LoRA dropout in this step's forward and backward only (policy/lora.h), a mask per step.
  std::optional<policy::LoraDropoutScope> dropout;
  if (cfg.lora.dropout > 0) {
    dropout.emplace(student->params().data(),
                    cfg.seed * 0x9E3779B97F4A7C15ULL + uint64_t(step) * 1000003ULL);
  }
  policy::ForwardOptions fo;
  fo.expert_parallel = cfg.parallel.expert_parallel();
  student->forward(batch, fo, acts);
  const double sft_w = sft ? cfg.kd.sft_weight : 0.0;
  std::vector<float> dlp(n, 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    if (is_comp[t] == 0.0f) continue;
    nll -= acts.logprob[t];
    dlp[t] = static_cast<float>(-sft_w / double(n_comp));
  }
  std::vector<float> dh;
  double& kl = sums.kl;
  if (cfg.kd.weight > 0) {
    std::vector<float> row_w(n);
    for (int64_t t = 0; t < n; ++t)
      row_w[t] = static_cast<float>(is_comp[t] * cfg.kd.weight / double(n_comp));
    SparseTargets tg = kd_targets(*this, seqs, batch, row_w);
    KlOptions ko;
    ko.direction = cfg.kd.direction == "reverse" ? KlDirection::kReverse
                                                 : KlDirection::kForward;
    ko.tail = cfg.kd.tail;
    dh.assign(acts.h_final.size(), 0.0f);
    const int d = student->config().hidden_size;
    kl = sparse_kl_forward_backward(
             acts.h_final.data(), student->params().data() + student->lm_head_offset(), tg, ko,
             dh.data(), student->grads().data() + student->lm_head_offset(), d,
             student->config().vocab_size) /
         cfg.kd.weight;
  }
  if (sft && cfg.mtp_weight > 0) {
    const std::vector<float> dh_mtp = mtp_term(acts, is_comp, mtp_rows, sums.mtp_nll);
    if (dh.empty()) dh.assign(dh_mtp.size(), 0.0f);
    for (size_t i = 0; i < dh.size(); ++i) dh[i] += dh_mtp[i];
  }
  // Gradients are summed over ranks layer by layer while backward runs.
  student->backward(acts, sft_w > 0 ? dlp.data() : nullptr, nullptr, policy::BalanceWeights{},
                    dh.empty() ? nullptr : dh.data(), update->ready());
  return sums;
}

// The MTP loss on the completion tokens: its parameter gradients go into the student's, and
// the returned gradient of the final hidden states carries it into the trunk. nll: this rank's
// sum of -log p(token after next) over its rows.
std::vector<float> Run::mtp_term(const policy::Activations<float>& acts,
                                 const std::vector<float>& is_comp, double mtp_rows, double& nll) {
  return policy::mtp_term(
      student->config(), *student->mtp(), student->params().data(), student->grads().data(), acts,
      [&](int64_t main_row) { return is_comp[main_row + 1] != 0.0f; }, cfg.mtp_weight, mtp_rows,
      nll);
}

void Run::setup_esft() {
  if (!cfg.esft.enabled) return;
  if (selection.layers.empty()) {  // fresh run (a resumed one restored its selection)
    // Scored on batches of a cursor of its own, so the training order is the same with or
    // without ESFT.
    datasets::DataCursor c(static_cast<int64_t>(data.size()), cfg.seed + 1);
    std::vector<policy::Batch> batches;
    for (int b = 0; b < cfg.esft.score_batches; ++b) {
      std::vector<std::vector<int32_t>> seqs;
      int64_t n = 0;
      while (n < cfg.batch_tokens) {
        const SftExample& ex = data[c.next(1)[0]];
        seqs.push_back(ex.prompt);
        seqs.back().insert(seqs.back().end(), ex.completion.begin(), ex.completion.end());
        n += static_cast<int64_t>(seqs.back().size());
      }
      batches.push_back(policy::Batch::from_sequences(seqs));
    }
    auto scores =
        policy::expert_scores(*student, batches, policy::parse_esft_metric(cfg.esft.metric));
    selection = policy::select_experts(scores, cfg.esft.share, cfg.esft.include_shared);
  }
  std::vector<uint8_t> mask = policy::trainable_mask(*student, selection);
  policy::EsftReport rep = policy::esft_report(student->table(), mask);
  update->set_trainable(std::move(mask));
  Json info = {{"selection", selection.to_json()}, {"report", rep.to_json()}};
  if (dist::rank() == 0) save_json_file((fs::path(cfg.output_dir) / "esft.json").string(), info);
  if (db) db->event(step, "info", "esft", rep.to_json().dump());
  spdlog::info(
      "ESFT: training {} of {} parameters ({:.1f}%), {:.1f} MiB of gradient and optimizer "
      "state saved",
      rep.trainable_params, rep.total_params, 100 * rep.trainable_share,
      double(rep.memory_saved_bytes) / (1 << 20));
}

void Run::save_checkpoint() {
  Json own = Json::object();
  if (cfg.esft.enabled) own["esft"] = selection.to_json();
  checkpoints->save("", step, own, {});
}

// Opens (or reopens) run.db on rank 0 and restores the newest checkpoint on a resume.
void Run::open_run(const Json& raw, bool resume) {
  opt = std::make_unique<policy::Optimizer<float>>(student->table(), cfg.optimizer);
  const std::string ckpt = resume ? train::Checkpointer::latest(cfg.output_dir) : "";
  db = train::open_run_db(cfg.output_dir, "distill", raw,
                          cfg.student.empty() ? "(new student)" : cfg.student, resume);
  update = std::make_unique<train::UpdateStep>(*student, *opt, cfg.optimizer.max_grad_norm,
                                               cfg.max_nan_skips, db.get());
  checkpoints = std::make_unique<train::Checkpointer>(
      cfg.output_dir, tok_dir, db.get(), train::TrainedState{*student, *opt, *cursor, *update});
  if (!resume) return;
  const Json state = checkpoints->resume(ckpt, step);
  if (state.contains("esft")) selection = policy::EsftSelection::from_json(state["esft"]);
}

// What this run is, in one place, as `aha train` and `aha pretrain` have it: on stderr for the
// user and as a "start" event in run.db.
void Run::log_start(bool resume) {
  const std::string student_name =
      cfg.student.empty() ? "new " + (cfg.student_config.is_string()
                                          ? cfg.student_config.get<std::string>()
                                          : std::string("student"))
                          : cfg.student;
  const std::string mode = cfg.kd.weight <= 0 ? "sft"
                           : cfg.kd.on_policy ? "on-policy kd"
                                              : "kd (" + cfg.kd.source + " teacher logits)";
  const Json summary = {{"aha", version()},
                        {"student", student_name},
                        {"model_type", student->config().type_name()},
                        {"parameters", student->params().size()},
                        {"teacher", cfg.teacher.empty() ? "none" : cfg.teacher},
                        {"mode", mode},
                        {"data", cfg.data.value("train", "")},
                        {"examples", data.size()},
                        {"steps", cfg.steps},
                        {"from_step", step},
                        {"esft", cfg.esft.enabled},
                        {"output_dir", cfg.output_dir},
                        {"resumed", resume}};
  spdlog::info("aha {} | distill ({}) | student {} ({} parameters) | teacher {} | {} examples "
               "from {} | steps {}..{} | {}",
               version(), mode, student_name, student->params().size(),
               summary["teacher"].get<std::string>(), data.size(),
               summary["data"].get<std::string>(), step + 1, cfg.steps, cfg.output_dir);
  db->event(step, "info", "start", summary.dump());
}

}  // namespace

Json run_distill(const DistillConfig& cfg, const Json& raw, bool resume, int64_t max_steps,
                 const std::function<void(const DistillReport&)>& on_step) {
  ThreadLimit limit(cfg.threads);
  Run run(cfg);
  run.load_models();
  const bool use_ids = cfg.kd.weight > 0 && cfg.kd.source == "stored";
  run.data = load_sft(cfg.data.at("train").get<std::string>(), *run.tok, use_ids, use_ids,
                      run.student->config().vocab_size, cfg.data.value("limit", int64_t{0}),
                      run.student->rope().max_pos());
  run.cursor =
      std::make_unique<datasets::DataCursor>(static_cast<int64_t>(run.data.size()), cfg.seed);
  run.open_run(raw, resume);
  run.setup_esft();
  if (run.db) run.log_start(resume);
  train::StepLoop loop(cfg.steps, cfg.save_every, max_steps, run.step);
  Json m = Json::object();
  train::fail_run_on_error(run.db.get(), run.step, [&] {
    while (loop.more(run.step)) {
      auto t0 = Clock::now();
      m = cfg.kd.on_policy ? run.train_on(run.on_policy_batch(), false, true)
                           : run.train_on(run.next_batch(), true);
      ++run.step;
      const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
      m["tokens_per_s"] = m["tokens"].get<double>() / dt;
      m["step_time_s"] = dt;
      if (run.db) run.db->write_step(run.step, m, {}, false);
      const bool save = loop.save_after(run.step);
      if (on_step && dist::rank() == 0) on_step(DistillReport{run.step, cfg.steps, m});
      if (save) run.save_checkpoint();
    }
  });
  // Sharded experts: every rank writes its share of the final model.
  if (run.step >= cfg.steps) run.checkpoints->save_weights("final", {});
  if (!run.db) return m;
  run.db->finish(run.step >= cfg.steps ? "finished" : "paused");
  return m;
}

}  // namespace aha::distill
