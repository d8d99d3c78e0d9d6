// Next-token pretraining loop.
#include "aha/core/version.h"
#include "aha/grpo/pretrain.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/core/threading.h"
#include "aha/datasets/dataset.h"
#include "aha/datasets/synthetic.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/indexer_loss.h"
#include "aha/tokenizer/tokenizer.h"
#include "aha/runlog/run_db.h"
#include "aha/train/checkpointer.h"
#include "aha/train/run_loop.h"
#include "aha/train/update_step.h"

namespace aha::grpo {

namespace fs = std::filesystem;

PretrainConfig PretrainConfig::from_json(const Json& j) {
  StrictReader r(j, "config");
  PretrainConfig c;
  c.model = r.require<std::string>("model");
  c.output_dir = r.require<std::string>("output_dir");
  if (c.output_dir.empty()) fail("output_dir must not be empty");
  c.seed = r.get<uint64_t>("seed", 0);
  c.data = r.child("data");
  c.steps = r.get<int>("steps", c.steps);
  c.batch_tokens = r.get<int64_t>("batch_tokens", c.batch_tokens);
  c.save_every = r.get<int>("save_every", 0);
  c.threads = r.get<int>("threads", 0);
  c.precision = matmul_precision_from(r.get<std::string>("precision", "fp32"), "precision");
  c.max_nan_skips = r.get<int>("max_nan_skips", c.max_nan_skips);
  c.mtp_weight = r.get<double>("mtp_weight", 0.0);
  c.mtp_detached = r.get<bool>("mtp_detached", false);
  c.indexer_loss_weight = r.get<double>("indexer_loss_weight", 0.0);
  const std::string stage = r.get<std::string>("indexer_stage", "sparse");
  c.parallel = train::ParallelConfig::from_json(r.child("parallel"));
  c.optimizer = policy::OptimizerConfig::from_json(r.child("optimizer"));
  Json sched = r.child("schedule");
  r.finish();
  if (!sched.contains("total_steps")) sched["total_steps"] = c.steps;
  c.schedule = policy::LrSchedule::from_json(sched);
  if (c.steps < 1 || c.batch_tokens < 1) fail("steps and batch_tokens must be >= 1");
  if (c.max_nan_skips < 0) fail("max_nan_skips must be >= 0");
  if (!(c.mtp_weight >= 0) || !std::isfinite(c.mtp_weight)) fail("mtp_weight must be >= 0");
  if (c.mtp_detached && !(c.mtp_weight > 0)) fail("mtp_detached needs mtp_weight > 0");
  if (!(c.indexer_loss_weight >= 0) || !std::isfinite(c.indexer_loss_weight)) {
    fail("indexer_loss_weight must be >= 0");
  }
  if (stage != "dense" && stage != "sparse") {
    fail("indexer_stage must be \"dense\" or \"sparse\", got \"", stage, "\"");
  }
  c.indexer_stage =
      stage == "dense" ? policy::IndexerSupport::kDense : policy::IndexerSupport::kSparse;
  if (c.indexer_stage == policy::IndexerSupport::kDense && c.mtp_detached) {
    fail("indexer_stage \"dense\" trains the indexer alone: it excludes mtp_detached");
  }
  StrictReader d(c.data, "data");
  if (!d.has("train")) fail("data.train is required");
  for (const char* k : {"train"}) d.get<std::string>(k, "");
  d.get<int64_t>("size", 0);
  d.get<std::vector<int>>("digits", {});
  d.get<std::vector<int>>("numbers", {});
  d.get<int>("max_number", 0);
  for (const char* k : {"p_sloppy", "p_wrong_answer", "p_no_format"}) d.get<double>(k, 0.0);
  d.finish();
  return c;
}

namespace {

// The trainable mask of a detached MTP run: the tensors of model.layers.<num_hidden_layers>.
// The lightning indexers' tensors: all that learns in the indexer's dense warm-up.
std::vector<uint8_t> indexer_only(const policy::Model<float>& model) {
  std::vector<uint8_t> mask;
  for (const auto& e : model.table().entries()) {
    mask.push_back(e.name.find(".self_attn.indexer.") != std::string::npos);
  }
  return mask;
}

std::vector<uint8_t> mtp_only(const policy::Model<float>& model) {
  const policy::ModelConfig& c = model.config();
  std::vector<uint8_t> mask;
  for (const auto& e : model.table().entries()) {
    bool in = false;
    for (int k = 0; k < c.num_nextn_predict_layers; ++k) {
      in = in || e.name.rfind("model.layers." + std::to_string(c.num_hidden_layers + k) + ".", 0) == 0;
    }
    mask.push_back(in);
  }
  return mask;
}

// The prompt template every document was written with ("" when unknown or mixed).
void note_template(const Json& row, std::string& templ, bool& first) {
  const std::string t = row.contains("template") && row["template"].is_string()
                            ? row["template"].get<std::string>()
                            : std::string();
  if (first) templ = t;
  else if (t != templ) templ.clear();
  first = false;
}

std::vector<std::string> load_texts(const Json& data, uint64_t seed, std::string& templ) {
  const std::string train = data.value("train", "");
  const int64_t size = data.value("size", int64_t{20000});
  std::vector<datasets::Example> docs;
  if (train == "synthetic:addition") {
    datasets::AdditionTask t;
    std::vector<int> digits = data.value("digits", std::vector<int>{1, 2});
    if (digits.size() != 2) fail("data.digits must be [min, max]");
    t.min_digits = digits[0];
    t.max_digits = digits[1];
    t.p_sloppy = data.value("p_sloppy", t.p_sloppy);
    t.p_wrong_answer = data.value("p_wrong_answer", t.p_wrong_answer);
    t.p_no_format = data.value("p_no_format", t.p_no_format);
    docs = datasets::addition_problems(size, seed, t, true);
  } else if (train == "synthetic:countdown") {
    datasets::CountdownTask t;
    std::vector<int> numbers = data.value("numbers", std::vector<int>{3, 4});
    if (numbers.size() != 2) fail("data.numbers must be [min, max]");
    t.min_numbers = numbers[0];
    t.max_numbers = numbers[1];
    t.max_number = data.value("max_number", t.max_number);
    t.p_wrong_answer = data.value("p_wrong_answer", t.p_wrong_answer);
    t.p_no_format = data.value("p_no_format", t.p_no_format);
    docs = datasets::countdown_problems(size, seed, t, true);
  } else {
    datasets::DataFormat f;
    f.prompt_field = "text";
    f.answer_field = "text";
    docs = datasets::load_jsonl(train, f);
  }
  std::vector<std::string> texts;
  bool first = true;
  for (auto& e : docs) {
    texts.push_back(e.row["text"].get<std::string>());
    note_template(e.row, templ, first);
  }
  if (texts.empty()) fail("the pretraining corpus is empty");
  return texts;
}

using Clock = std::chrono::steady_clock;

// One pretraining run: the tokenized corpus, the model and its optimizer, run.db and the state
// in <output_dir>/last.
struct Pretrain {
  const PretrainConfig& cfg;
  tokenizer::Tokenizer tok;
  std::unique_ptr<policy::Model<float>> model;
  std::string data_template;  // what the documents were written with ("" if unknown or mixed)
  std::vector<std::vector<int32_t>> docs;
  std::unique_ptr<policy::Optimizer<float>> opt;
  std::unique_ptr<datasets::DataCursor> cursor;
  std::unique_ptr<runlog::RunDb> db;  // rank 0
  std::unique_ptr<train::UpdateStep> update;
  std::unique_ptr<train::Checkpointer> checkpoints;
  policy::Activations<float> acts;
  policy::MtpActs<float> mtp_acts;
  int64_t step = 0;

  explicit Pretrain(const PretrainConfig& c)
      : cfg(c),
        tok(tokenizer::Tokenizer::load(c.model)),
        // parallel.ep: each rank loads and keeps only its own experts.
        model(policy::load_model<float>(c.model, policy::LoraConfig{},
                                        train::expert_parallel_for(c.parallel, c.model, true))) {
    train::check_device_balance(c.parallel, model->config());
    if (c.indexer_loss_weight > 0 && !model->config().has_indexer()) {
      fail("indexer_loss_weight needs a deepseek_v32 model (DeepSeek Sparse Attention) in ",
           c.model, "/config.json");
    }
    if (c.mtp_weight > 0 && model->mtp() == nullptr) {
      fail("mtp_weight needs a model with an MTP module (num_nextn_predict_layers: 1 in ",
           c.model, "/config.json)");
    }
  }
  void load_docs();
  void open_run(const Json& raw, bool resume);
  Json train_step();
  void backward(bool has_rows, const double* sums, double local_pred, double local_mtp);
  std::vector<std::vector<int32_t>> draw_share();
  // What the base was trained on, kept beside its weights: GRPO and eval warn when they prompt
  // it with another template (a base only answers prompts shaped like its documents).
  void save_data_note(const fs::path& dir) const {
    if (!data_template.empty()) {
      save_json_file((dir / "aha_data.json").string(), Json{{"prompt_template", data_template}});
    }
  }
  void save_state() {
    checkpoints->save("last", step, Json::object(),
                      [this](const fs::path& dir) { save_data_note(dir); });
  }
};

void Pretrain::load_docs() {
  std::vector<std::string> texts = load_texts(cfg.data, cfg.seed, data_template);
  // Tokenize once: documents are reused across epochs.
  const int max_len = model->rope().max_pos();
  for (const auto& t : texts) {
    auto ids = tok.encode(t, true);
    if (tok.eos_id()) ids.push_back(*tok.eos_id());
    if (static_cast<int>(ids.size()) > max_len) ids.resize(max_len);
    if (ids.size() >= 2) docs.push_back(std::move(ids));
  }
}

void Pretrain::open_run(const Json& raw, bool resume) {
  opt = std::make_unique<policy::Optimizer<float>>(model->table(), cfg.optimizer);
  cursor = std::make_unique<datasets::DataCursor>(static_cast<int64_t>(docs.size()), cfg.seed);
  const fs::path last = fs::path(cfg.output_dir) / "last";
  const std::string resume_dir =
      resume && train::Checkpointer::is_complete(last) ? last.string() : "";
  db = train::open_run_db(cfg.output_dir, "pretrain", raw, cfg.model, resume);
  if (db) {
    const Json summary = {{"aha", version()}, {"model", cfg.model},
                          {"parameters", model->params().size()}, {"documents", docs.size()},
                          {"data", cfg.data.value("train", "")}, {"template", data_template},
                          {"steps", cfg.steps}, {"batch_tokens", cfg.batch_tokens},
                          {"output_dir", cfg.output_dir}, {"resumed", resume}};
    spdlog::info("aha {} | pretrain {} ({} parameters) | {} documents from {} | {} steps of {} "
                 "tokens | {}", version(), cfg.model, model->params().size(), docs.size(),
                 summary["data"].get<std::string>(), cfg.steps, cfg.batch_tokens, cfg.output_dir);
    db->event(0, "info", "start", summary.dump());
  }
  update = std::make_unique<train::UpdateStep>(*model, *opt, cfg.optimizer.max_grad_norm,
                                               cfg.max_nan_skips, db.get());
  if (cfg.mtp_detached) update->set_trainable(mtp_only(*model));
  if (cfg.indexer_loss_weight > 0 && cfg.indexer_stage == policy::IndexerSupport::kDense) {
    update->set_trainable(indexer_only(*model));
  }
  checkpoints = std::make_unique<train::Checkpointer>(
      cfg.output_dir, cfg.model, db.get(), train::TrainedState{*model, *opt, *cursor, *update});
  if (resume) checkpoints->resume(resume_dir, step);
}

// The step's backward: mean NLL over every rank's predicted tokens (sums[0]), the MTP term's
// share (local_mtp of sums[3] rows), or only the collectives of a rank without rows.
void Pretrain::backward(bool has_rows, const double* sums, double local_pred, double local_mtp) {
  const bool mtp = cfg.mtp_weight > 0;
  if (!has_rows) {
    if (cfg.parallel.expert_parallel() && !cfg.mtp_detached) {
      model->backward_idle(acts, update->ready());
    } else {
      update->no_backward();
    }
    return;
  }
  const auto n_pred = static_cast<float>(sums[0]);
  std::vector<float> dlp(acts.logprob.size(), 0.0f);
  for (size_t t = 0; t < dlp.size(); ++t) {
    if (acts.targets[t] >= 0) dlp[t] = -1.0f / n_pred;
  }
  std::vector<float> dh;
  if (mtp) {  // the rank's share of lambda * (global mean MTP loss)
    dh.assign(acts.h_final.size(), 0.0f);
    policy::mtp_backward(model->config(), *model->mtp(), model->params().data(),
                         model->grads().data(), mtp_acts,
                         cfg.mtp_weight * local_mtp / std::max(1.0, sums[3]), dh.data());
  }
  if (cfg.mtp_detached) {
    update->no_backward();  // dh stops here: the trunk takes no gradient
    return;
  }
  // The sequence-wise loss's mean is over this rank's sequences: weighted by its share; the
  // device-level losses' statistics are global already: whole.
  const policy::BalanceWeights balance{.seq = local_pred / std::max(1.0, sums[0]), .batch = 1.0};
  model->backward(acts, dlp.data(), nullptr, balance, mtp ? dh.data() : nullptr, update->ready());
}

// One optimizer step on batch_tokens of whole documents; returns the step's metrics.
Json Pretrain::train_step() {
  auto t0 = Clock::now();
  const dist::Traffic sent0 = dist::traffic();
  const std::vector<std::vector<int32_t>> batch_docs = draw_share();
  double sums[5] = {0, 0, 0, 0, 0};  // predicted tokens, nll, tokens, MTP rows, MTP nll
  const bool mtp = cfg.mtp_weight > 0;
  update->begin();
  const bool ep = cfg.parallel.expert_parallel();
  if (!batch_docs.empty()) {
    const policy::Batch batch = policy::Batch::from_sequences(batch_docs);
    policy::ForwardOptions fo;
    fo.expert_parallel = ep;
    model->forward(batch, fo, acts);
    for (size_t t = 0; t < acts.targets.size(); ++t) {
      if (acts.targets[t] < 0) continue;
      sums[0] += 1;
      sums[1] -= acts.logprob[t];
    }
    sums[2] = double(batch.n_tokens());
    if (mtp) {
      const double loss = policy::mtp_forward(model->config(), *model->mtp(),
                                              model->params().data(), acts, mtp_acts);
      sums[3] = double(mtp_acts.count);
      sums[4] = loss * double(mtp_acts.count);
    }
  } else if (ep) {
    model->forward_idle(acts);  // the other ranks' rows still visit this rank's experts
  }
  const double local_pred = sums[0], local_mtp = sums[3];
  dist::allreduce_sum(sums, 5, "pretrain token counts");
  const int64_t n_pred = static_cast<int64_t>(sums[0]);
  const double nll = sums[1];
  // The rank's share of the indexer loss's mean over all ranks' tokens, added before backward
  // so that the gradient sums it starts include it.
  double indexer = 0;
  if (cfg.indexer_loss_weight > 0 && !batch_docs.empty()) {
    const double share = double(acts.layout.n_tokens()) / std::max(1.0, sums[2]);
    indexer = share * policy::indexer_loss(*model, acts, cfg.indexer_stage,
                                           cfg.indexer_loss_weight * share);
  }
  if (cfg.indexer_loss_weight > 0) dist::allreduce_sum(&indexer, 1, "pretrain indexer loss");
  backward(!batch_docs.empty(), sums, local_pred, local_mtp);
  const double lr = cfg.schedule.at(step);
  const train::UpdateResult u = update->apply(nll, lr, step + 1);
  ++step;
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  Json m{{"loss", nll / double(n_pred)}, {"ppl", std::exp(nll / double(n_pred))},
         {"lr", lr}, {"grad_norm", u.grad_norm}, {"tokens", int64_t(sums[2])},
         {"tokens_per_s", sums[2] / dt}, {"aux_loss", acts.aux_loss},
         {"epoch", cursor->epoch()}, {"mtp_loss", mtp ? sums[4] / std::max(1.0, sums[3]) : 0.0},
         {"indexer_loss", indexer}};
  if (model->config().has_device_balance()) {  // global under parallel.ep: every rank's tokens
    m["device_balance_loss"] = acts.device_loss;
    m["comm_balance_loss"] = acts.comm_loss;
  }
  if (dist::active()) {  // rank 0's bytes to other ranks this step (docs/scaling.md)
    const dist::Traffic sent = dist::traffic();
    m["alltoall_bytes"] = sent.alltoall_bytes - sent0.alltoall_bytes;
    m["allreduce_bytes"] = sent.allreduce_bytes - sent0.allreduce_bytes;
  }
  return m;
}

// Documents up to batch_tokens; every rank draws the same ones and keeps its contiguous share.
std::vector<std::vector<int32_t>> Pretrain::draw_share() {
  std::vector<std::vector<int32_t>> all;
  int64_t n_tokens = 0;
  while (n_tokens < cfg.batch_tokens) {
    const auto& d = docs[cursor->next(1)[0]];
    n_tokens += static_cast<int64_t>(d.size());
    all.push_back(d);
  }
  const auto [lo, hi] = dist::share(static_cast<int64_t>(all.size()));
  return {all.begin() + lo, all.begin() + hi};
}

}  // namespace

void pretrain(const PretrainConfig& cfg, const Json& raw, bool resume,
              const std::function<void(const PretrainReport&)>& on_step, int64_t max_steps) {
  ThreadLimit limit(cfg.threads);
  MatmulPrecisionScope precision(cfg.precision);
  Pretrain p(cfg);
  p.load_docs();
  p.open_run(raw, resume);
  const auto start = Clock::now();
  train::StepLoop loop(cfg.steps, cfg.save_every, max_steps, p.step);
  train::fail_run_on_error(p.db.get(), p.step, [&] {
    while (loop.more(p.step)) {
      const Json m = p.train_step();
      if (p.db) p.db->write_step(p.step, m, {}, false);
      if (on_step && dist::rank() == 0) on_step(PretrainReport{p.step, cfg.steps, m});
      if (loop.save_after(p.step)) p.save_state();
    }
  });
  // Sharded experts: every rank writes its share of the final model.
  std::string final_dir;
  if (p.step >= cfg.steps) {
    final_dir =
        p.checkpoints->save_weights("final", [&p](const fs::path& dir) { p.save_data_note(dir); });
  }
  if (!p.db) return;
  if (p.step < cfg.steps) {
    p.db->finish("paused");
    spdlog::info("paused at step {}/{}: continue with --resume", p.step, cfg.steps);
    return;
  }
  p.db->finish("finished");
  spdlog::info("pretraining done in {:.1f}s: {}",
               std::chrono::duration<double>(Clock::now() - start).count(), final_dir);
}

}  // namespace aha::grpo
