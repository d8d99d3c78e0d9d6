// Next-token pretraining loop.
#include "aha/core/interrupt.h"
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
#include "aha/policy/tokenizer.h"
#include "aha/runlog/run_db.h"

namespace aha::grpo {

namespace fs = std::filesystem;

PretrainConfig PretrainConfig::from_json(const Json& j) {
  StrictReader r(j, "config");
  PretrainConfig c;
  c.model = r.require<std::string>("model");
  c.output_dir = r.require<std::string>("output_dir");
  c.seed = r.get<uint64_t>("seed", 0);
  c.data = r.child("data");
  c.steps = r.get<int>("steps", c.steps);
  c.batch_tokens = r.get<int64_t>("batch_tokens", c.batch_tokens);
  c.save_every = r.get<int>("save_every", 0);
  c.threads = r.get<int>("threads", 0);
  c.optimizer = policy::OptimizerConfig::from_json(r.child("optimizer"));
  Json sched = r.child("schedule");
  r.finish();
  if (!sched.contains("total_steps")) sched["total_steps"] = c.steps;
  c.schedule = policy::LrSchedule::from_json(sched);
  if (c.steps < 1 || c.batch_tokens < 1) fail("steps and batch_tokens must be >= 1");
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
  std::vector<std::string> texts;
  bool first = true;
  if (train == "synthetic:addition") {
    datasets::AdditionTask t;
    std::vector<int> digits = data.value("digits", std::vector<int>{1, 2});
    if (digits.size() != 2) fail("data.digits must be [min, max]");
    t.min_digits = digits[0];
    t.max_digits = digits[1];
    t.p_sloppy = data.value("p_sloppy", t.p_sloppy);
    t.p_wrong_answer = data.value("p_wrong_answer", t.p_wrong_answer);
    t.p_no_format = data.value("p_no_format", t.p_no_format);
    for (auto& e : datasets::addition_problems(data.value("size", int64_t{20000}), seed, t, true)) {
      texts.push_back(e.row["text"].get<std::string>());
      note_template(e.row, templ, first);
    }
  } else if (train == "synthetic:countdown") {
    datasets::CountdownTask t;
    std::vector<int> numbers = data.value("numbers", std::vector<int>{3, 4});
    if (numbers.size() != 2) fail("data.numbers must be [min, max]");
    t.min_numbers = numbers[0];
    t.max_numbers = numbers[1];
    t.max_number = data.value("max_number", t.max_number);
    t.p_wrong_answer = data.value("p_wrong_answer", t.p_wrong_answer);
    t.p_no_format = data.value("p_no_format", t.p_no_format);
    for (auto& e : datasets::countdown_problems(data.value("size", int64_t{20000}), seed, t, true)) {
      texts.push_back(e.row["text"].get<std::string>());
      note_template(e.row, templ, first);
    }
  } else {
    datasets::DataFormat f;
    f.prompt_field = "text";
    f.answer_field = "text";
    for (auto& e : datasets::load_jsonl(train, f)) {
      texts.push_back(e.row["text"].get<std::string>());
      note_template(e.row, templ, first);
    }
  }
  if (texts.empty()) fail("the pretraining corpus is empty");
  return texts;
}

}  // namespace

void pretrain(const PretrainConfig& cfg, const Json& raw, bool resume,
              const std::function<void(const PretrainReport&)>& on_step, int64_t max_steps) {
  ThreadLimit limit(cfg.threads);
  auto tok = policy::Tokenizer::load(cfg.model);
  auto model = policy::load_model<float>(cfg.model);
  std::string data_template;
  std::vector<std::string> texts = load_texts(cfg.data, cfg.seed, data_template);
  // Tokenize once: documents are reused across epochs.
  std::vector<std::vector<int32_t>> docs;
  const int max_len = model->rope().max_pos();
  for (const auto& t : texts) {
    auto ids = tok.encode(t, true);
    if (tok.eos_id()) ids.push_back(*tok.eos_id());
    if (static_cast<int>(ids.size()) > max_len) ids.resize(max_len);
    if (ids.size() >= 2) docs.push_back(std::move(ids));
  }
  policy::Optimizer<float> opt(model->table(), cfg.optimizer);
  datasets::DataCursor cursor(static_cast<int64_t>(docs.size()), cfg.seed);
  fs::create_directories(cfg.output_dir);
  // Data parallel: rank 0 owns run.db and the saved states.
  std::unique_ptr<runlog::RunDb> db;
  if (dist::rank() == 0) {
    db = std::make_unique<runlog::RunDb>((fs::path(cfg.output_dir) / "run.db").string(),
                                         "pretrain", raw, cfg.model, resume);
    policy::sweep_partial_writes(cfg.output_dir);
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
  int64_t step = 0;
  const fs::path state_dir = fs::path(cfg.output_dir) / "last";
  if (resume && fs::exists(state_dir / "trainer_state.json")) {
    Json st = load_json_file((state_dir / "trainer_state.json").string());
    model->params() = policy::load_model<float>(state_dir.string())->params();
    opt.load((state_dir / "optimizer.safetensors").string());
    step = st.at("step").get<int64_t>();
    cursor.restore(st.at("cursor"));
    if (db) db->rewind_to(step);
  }
  // What the base was trained on, kept beside its weights: GRPO and eval warn when they prompt
  // it with another template (a base only answers prompts shaped like its documents).
  auto save_data_note = [&](const fs::path& dir) {
    if (!data_template.empty()) {
      save_json_file((dir / "aha_data.json").string(), Json{{"prompt_template", data_template}});
    }
  };
  auto save = [&](const fs::path& dir) {
    if (!db) return;
    policy::SaveOptions so;
    so.copy_tokenizer_from = cfg.model;
    policy::save_model(*model, dir.string(), so);
    save_data_note(dir);
    opt.save((dir / "optimizer.safetensors").string());
    save_json_file((dir / "trainer_state.json").string(),
                   Json{{"step", step}, {"cursor", cursor.state()}});
    db->add_checkpoint(step, dir.string());
  };
  policy::Activations<float> acts;
  auto start = std::chrono::steady_clock::now();
  int64_t stop_at = max_steps > 0 ? std::min<int64_t>(cfg.steps, step + max_steps) : cfg.steps;
  int nan_streak = 0;
  while (step < stop_at) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::vector<int32_t>> batch_docs;
    int64_t n_tokens = 0;
    while (n_tokens < cfg.batch_tokens) {
      const auto& d = docs[cursor.next(1)[0]];
      n_tokens += static_cast<int64_t>(d.size());
      batch_docs.push_back(d);
    }
    // Every rank draws the same documents and trains on its contiguous share of them.
    const int64_t n_docs = static_cast<int64_t>(batch_docs.size());
    const auto [lo, hi] = dist::share(n_docs);
    batch_docs = std::vector<std::vector<int32_t>>(batch_docs.begin() + lo, batch_docs.begin() + hi);
    double sums[3] = {0, 0, 0};  // predicted tokens, nll, tokens
    model->zero_grad();
    policy::Batch batch;
    if (!batch_docs.empty()) {
      batch = policy::Batch::from_sequences(batch_docs);
      model->forward(batch, {}, acts);
      for (size_t t = 0; t < acts.targets.size(); ++t) {
        if (acts.targets[t] < 0) continue;
        sums[0] += 1;
        sums[1] -= acts.logprob[t];
      }
      sums[2] = double(batch.n_tokens());
    }
    const double local_pred = sums[0];
    dist::allreduce_sum(sums, 3, "pretrain token counts");
    const int64_t n_pred = static_cast<int64_t>(sums[0]);
    const double nll = sums[1];
    // Each layer's gradient starts its allreduce as soon as backward has finished it; a rank
    // without documents joins the same sums, in the same order, with zeros.
    float* G = model->grads().data();
    dist::AsyncSum grad_sum;
    if (!batch_docs.empty()) {
      std::vector<float> dlp(acts.logprob.size(), 0.0f);
      for (size_t t = 0; t < dlp.size(); ++t) {
        if (acts.targets[t] >= 0) dlp[t] = -1.0f / static_cast<float>(n_pred);
      }
      policy::Model<float>::GradsReady ready = [&](size_t b, size_t e) { grad_sum.start(G + b, e - b); };
      model->backward(acts, dlp.data(), nullptr, local_pred / std::max(1.0, sums[0]), nullptr,
                      dist::active() ? &ready : nullptr);
    } else if (dist::active()) {
      for (auto [b, e] : model->grad_ranges()) grad_sum.start(G + b, e - b);
    }
    grad_sum.wait("gradient allreduce");
    double norm = policy::clip_grad_norm(model->table(), model->grads().data(), cfg.optimizer.max_grad_norm);
    const double lr = cfg.schedule.at(step);
    if (std::isfinite(norm) && std::isfinite(nll)) {
      opt.step(model->params().data(), model->grads().data(), lr);
      nan_streak = 0;
    } else {
      if (db) db->event(step + 1, "warn", "nan_skip", "non-finite loss or gradient: update skipped");
      if (++nan_streak > kPretrainMaxNanSkips) {
        if (db) db->finish("failed");
        fail("stopping: ", nan_streak, " non-finite updates in a row at step ", step + 1,
             " (learning rate ", lr, " too high?); the last good state is in ",
             state_dir.string());
      }
    }
    ++step;
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Json m = {{"loss", nll / double(n_pred)}, {"ppl", std::exp(nll / double(n_pred))},
              {"lr", lr}, {"grad_norm", norm}, {"tokens", int64_t(sums[2])},
              {"tokens_per_s", sums[2] / dt}, {"aux_loss", acts.aux_loss},
              {"epoch", cursor.epoch()}};
    if (db) db->write_step(step, m, {}, false);
    if (on_step && dist::rank() == 0) on_step(PretrainReport{step, cfg.steps, m});
    if (stop_requested_all()) stop_at = step;
    if (cfg.save_every > 0 && step % cfg.save_every == 0 && step < stop_at) save(state_dir);
  }
  save(state_dir);
  if (!db) return;
  if (step < cfg.steps) {
    db->finish("paused");
    spdlog::info("paused at step {}/{}: continue with --resume", step, cfg.steps);
    return;
  }
  policy::SaveOptions so;
  so.copy_tokenizer_from = cfg.model;
  policy::save_model(*model, (fs::path(cfg.output_dir) / "final").string(), so);
  save_data_note(fs::path(cfg.output_dir) / "final");
  db->finish("finished");
  spdlog::info("pretraining done in {:.1f}s: {}", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
               (fs::path(cfg.output_dir) / "final").string());
}

}  // namespace aha::grpo
