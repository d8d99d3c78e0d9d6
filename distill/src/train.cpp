// The distillation trainer: SFT on completion tokens, logit KD (stored or online teacher top-k),
// on-policy KD, ESFT masking; run.db logging, checkpoints and resume.
#include "aha/core/interrupt.h"
#include "aha/distill/train.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/threading.h"
#include "aha/datasets/dataset.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/esft.h"
#include "aha/policy/kd_loss.h"
#include "aha/rollout/engine.h"
#include "aha/runlog/run_db.h"
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
  std::unique_ptr<policy::Tokenizer> tok;
  std::unique_ptr<policy::Model<float>> student, teacher;
  std::vector<SftExample> data;
  std::unique_ptr<datasets::DataCursor> cursor;
  std::unique_ptr<policy::Optimizer<float>> opt;
  std::vector<uint8_t> mask;  // ESFT: empty when off
  policy::EsftSelection selection;
  std::unique_ptr<runlog::RunDb> db;
  int64_t step = 0;

  explicit Run(const DistillConfig& c) : cfg(c) {}
  void load_models();
  std::vector<Seq> next_batch();
  std::vector<Seq> on_policy_batch();
  Json train_on(const std::vector<Seq>& drawn, bool sft, bool local = false);
  double train_share(const std::vector<Seq>& seqs, const policy::Batch& batch,
                     const std::vector<float>& is_comp, int64_t n_comp, bool sft, double& nll,
                     dist::AsyncSum& grad_sum);
  void setup_esft();
  void save_checkpoint();
  void load_checkpoint(const std::string& dir);
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
  tok = std::make_unique<policy::Tokenizer>(policy::Tokenizer::load(tok_dir));
  if (!cfg.student.empty()) {
    student = policy::load_model<float>(cfg.student);
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
    student = std::make_unique<policy::Model<float>>(policy::ModelConfig::from_json(j));
    student->init_random(cfg.seed, cfg.init_std);
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
  const policy::Tokenizer* t = tok.get();
  eo.detokenize = [t](const std::vector<int32_t>& ids) {
    return t->decode(policy::known_ids(*t, ids));
  };
  std::vector<Seq> seqs;
  for (auto& c : rollout::Engine(*student, eo).generate(reqs)) {
    if (c.ids.empty() || c.finish_reason == "error") continue;
    seqs.push_back({reqs[c.prompt_index].prompt, std::move(c.ids), nullptr});
  }
  double produced = double(seqs.size());
  dist::allreduce_sum(&produced, 1, "on-policy completions");
  if (produced == 0) fail("on-policy step ", step + 1, ": the student produced no completion");
  return seqs;
}

// Teacher targets for every row of the batch: stored top-k, or the teacher's top-k computed now.
policy::SparseTargets kd_targets(const Run& run, const std::vector<Seq>& seqs,
                                 const policy::Batch& batch, const std::vector<float>& row_w) {
  const int64_t n = batch.n_tokens();
  policy::SparseTargets tg;
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
  policy::SparseTargets compact;
  policy::append_topk_logprobs(logits.data(), static_cast<int64_t>(rows.size()), V,
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
  double counts[2] = {double(local_comp), double(n)};
  dist::allreduce_sum(counts, 2, "completion token counts");
  const int64_t n_comp = static_cast<int64_t>(counts[0]);
  AHA_CHECK(n_comp > 0, "a batch without completion tokens");
  student->zero_grad();
  double sums[2] = {0, 0};  // nll, kl over this rank's rows
  // Gradients are summed layer by layer while backward runs; a rank without rows joins the
  // same sums, in the same order, with zeros.
  dist::AsyncSum grad_sum;
  if (n > 0) {
    sums[1] = train_share(seqs, batch, is_comp, n_comp, sft, sums[0], grad_sum);
  } else if (dist::active()) {
    for (auto [b, e] : student->grad_ranges()) grad_sum.start(student->grads().data() + b, e - b);
  }
  grad_sum.wait("gradient allreduce");
  dist::allreduce_sum(sums, 2, "loss sums");
  if (!mask.empty()) policy::apply_mask(student->table(), mask, student->grads().data());
  double norm = policy::clip_grad_norm(student->table(), student->grads().data(),
                                       cfg.optimizer.max_grad_norm);
  const double lr = cfg.schedule.at(step);
  if (std::isfinite(norm)) {
    opt->step(student->params().data(), student->grads().data(), lr);
  } else if (db) {
    db->event(step + 1, "warn", "nan_skip", "non-finite gradient: update skipped");
  }
  const double sft_w = sft ? cfg.kd.sft_weight : 0.0;
  const double nll_mean = sums[0] / double(n_comp), kl = sums[1];
  return Json{{"loss", sft_w * nll_mean + cfg.kd.weight * kl},
              {"nll", nll_mean},
              {"kl", kl},
              {"lr", lr},
              {"grad_norm", norm},
              {"tokens", int64_t(counts[1])},
              {"completion_tokens", n_comp},
              {"epoch", cursor->epoch()}};
}

// Forward and backward of this rank's sequences into the gradients; returns the KL term and
// adds the completion tokens' NLL to nll.
double Run::train_share(const std::vector<Seq>& seqs, const policy::Batch& batch,
                        const std::vector<float>& is_comp, int64_t n_comp, bool sft, double& nll,
                        dist::AsyncSum& grad_sum) {
  const int64_t n = batch.n_tokens();
  policy::Activations<float> acts;
  student->forward(batch, policy::ForwardOptions{}, acts);
  const double sft_w = sft ? cfg.kd.sft_weight : 0.0;
  std::vector<float> dlp(n, 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    if (is_comp[t] == 0.0f) continue;
    nll -= acts.logprob[t];
    dlp[t] = static_cast<float>(-sft_w / double(n_comp));
  }
  std::vector<float> dh;
  double kl = 0;
  if (cfg.kd.weight > 0) {
    std::vector<float> row_w(n);
    for (int64_t t = 0; t < n; ++t)
      row_w[t] = static_cast<float>(is_comp[t] * cfg.kd.weight / double(n_comp));
    policy::SparseTargets tg = kd_targets(*this, seqs, batch, row_w);
    policy::KlOptions ko;
    ko.direction = cfg.kd.direction == "reverse" ? policy::KlDirection::kReverse
                                                 : policy::KlDirection::kForward;
    ko.tail = cfg.kd.tail;
    dh.assign(acts.h_final.size(), 0.0f);
    const int d = student->config().hidden_size;
    kl = policy::sparse_kl_forward_backward(
             acts.h_final.data(), student->params().data() + student->lm_head_offset(), tg, ko,
             dh.data(), student->grads().data() + student->lm_head_offset(), d,
             student->config().vocab_size) /
         cfg.kd.weight;
  }
  float* G = student->grads().data();
  policy::Model<float>::GradsReady ready = [&](size_t b, size_t e) { grad_sum.start(G + b, e - b); };
  student->backward(acts, sft_w > 0 ? dlp.data() : nullptr, nullptr, 0.0, dh.empty() ? nullptr : dh.data(),
                    dist::active() ? &ready : nullptr);
  return kl;
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
  mask = policy::trainable_mask(*student, selection);
  policy::freeze_optimizer(*opt, student->table(), mask);
  policy::EsftReport rep = policy::esft_report(student->table(), mask);
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
  if (dist::rank() != 0) return;  // rank 0 owns the checkpoints and run.db
  const std::string dir =
      (fs::path(cfg.output_dir) / ("checkpoint-" + std::to_string(step))).string();
  policy::SaveOptions so;
  so.copy_tokenizer_from = tok_dir;
  policy::save_model(*student, dir, so);
  // Training state after the weights: a checkpoint without trainer_state.json is never resumed.
  opt->save((fs::path(dir) / "optimizer.safetensors").string());
  Json state = {{"step", step}, {"cursor", cursor->state()}};
  if (!mask.empty()) state["esft"] = selection.to_json();
  save_json_file((fs::path(dir) / "trainer_state.json").string(), state);
  db->add_checkpoint(step, dir);
}

void Run::load_checkpoint(const std::string& dir) {
  Json state = load_json_file((fs::path(dir) / "trainer_state.json").string());
  auto loaded = policy::load_model<float>(dir);
  if (loaded->params().size() != student->params().size()) fail(dir, ": architecture differs");
  student->params() = loaded->params();
  opt->load((fs::path(dir) / "optimizer.safetensors").string());
  step = state.at("step").get<int64_t>();
  cursor->restore(state.at("cursor"));
  if (state.contains("esft")) selection = policy::EsftSelection::from_json(state["esft"]);
}

std::string latest_checkpoint(const std::string& out) {
  std::string best;
  int64_t best_n = -1;
  if (!fs::exists(out)) return best;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) != 0 || !fs::exists(e.path() / "trainer_state.json")) continue;
    const std::string num = name.substr(11);
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;
    const int64_t n = std::stoll(num);
    if (n > best_n) {
      best_n = n;
      best = e.path().string();
    }
  }
  return best;
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
  run.opt = std::make_unique<policy::Optimizer<float>>(run.student->table(), cfg.optimizer);
  fs::create_directories(cfg.output_dir);
  const std::string db_path = (fs::path(cfg.output_dir) / "run.db").string();
  if (resume && !fs::exists(db_path)) fail("cannot resume: no run.db in ", cfg.output_dir);
  const std::string ckpt = resume ? latest_checkpoint(cfg.output_dir) : "";
  if (dist::rank() == 0) {
    run.db = std::make_unique<runlog::RunDb>(
        db_path, "distill", raw, cfg.student.empty() ? "(new student)" : cfg.student, resume);
    policy::sweep_partial_writes(cfg.output_dir);
  }
  if (!ckpt.empty()) {
    run.load_checkpoint(ckpt);
    if (run.db) run.db->rewind_to(run.step);
    spdlog::info("resumed from {} (step {})", ckpt, run.step);
  } else if (resume && run.db) {
    run.db->rewind_to(0);
  }
  run.setup_esft();
  int64_t stop_at = max_steps > 0 ? std::min<int64_t>(cfg.steps, run.step + max_steps) : cfg.steps;
  Json m = Json::object();
  while (run.step < stop_at) {
    auto t0 = Clock::now();
    m = cfg.kd.on_policy ? run.train_on(run.on_policy_batch(), false, true)
                         : run.train_on(run.next_batch(), true);
    ++run.step;
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    m["tokens_per_s"] = m["tokens"].get<double>() / dt;
    m["step_time_s"] = dt;
    if (run.db) run.db->write_step(run.step, m, {}, false);
    if (stop_requested_all()) stop_at = run.step;  // Ctrl-C: save this step and pause
    if (on_step && dist::rank() == 0) on_step(DistillReport{run.step, cfg.steps, m});
    if (run.step == stop_at || (cfg.save_every > 0 && run.step % cfg.save_every == 0))
      run.save_checkpoint();
  }
  if (!run.db) return m;
  if (run.step >= cfg.steps) {
    policy::SaveOptions so;
    so.copy_tokenizer_from = run.tok_dir;
    policy::save_model(*run.student, (fs::path(cfg.output_dir) / "final").string(), so);
  }
  run.db->finish(run.step >= cfg.steps ? "finished" : "paused");
  return m;
}

}  // namespace aha::distill
