// Saving, finding, loading and pruning the checkpoint directories of a run.
#include "aha/train/checkpointer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>

#include "aha/core/dist.h"
#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"

namespace aha::train {

namespace fs = std::filesystem;

namespace {
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kAdapterDir = "adapter";  // LoRA: the adapters alone (PEFT layout)
}  // namespace

Checkpointer::Checkpointer(std::string output_dir, std::string tokenizer_dir, runlog::RunDb* db,
                           TrainedState state)
    : output_dir_(std::move(output_dir)),
      tokenizer_dir_(std::move(tokenizer_dir)),
      db_(db),
      state_(state) {}

bool Checkpointer::is_complete(const fs::path& dir) { return fs::exists(dir / kStateFile); }

std::vector<Checkpointer::Entry> Checkpointer::complete(const fs::path& output_dir) {
  std::vector<Entry> found;
  static const std::regex re("checkpoint-([0-9]+)");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(output_dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (!std::regex_match(name, m, re) || !is_complete(e.path())) continue;
    found.push_back({std::stoll(m[1]), e.path()});
  }
  std::sort(found.begin(), found.end(),
            [](const Entry& a, const Entry& b) { return a.step > b.step; });
  return found;
}

std::unique_ptr<policy::Model<float>> load_policy(const std::string& dir,
                                                  const policy::LoraConfig& lora, uint64_t seed,
                                                  const policy::ExpertParallel& ep) {
  auto model = policy::load_model<float>(dir, lora, ep);
  if (!lora.on()) return model;
  if (model->adapter_begin() == model->params().size()) {
    fail("lora.target_modules match no layer of ", dir);
  }
  if (lora.adapter.empty()) {
    model->init_adapters(seed);
  } else {
    policy::load_adapters(*model, lora.adapter);
  }
  return model;
}

std::string Checkpointer::latest(const fs::path& output_dir) {
  const std::vector<Entry> found = complete(output_dir);
  return found.empty() ? std::string() : found.front().dir.string();
}

std::string Checkpointer::save_sharded(const std::string& name, bool optimizer,
                                       const ExtraFiles& extra) const {
  // Every rank stages its shard (and moments) beside the checkpoint, under a name that
  // sweep_partial_writes removes after a kill; rank 0 then moves them in with the index.
  const fs::path staging = output_dir_ / ("." + name + ".tmp.ep");
  const int rank = dist::rank(), size = dist::size();
  std::error_code ec;
  if (rank == 0) {
    fs::remove_all(staging, ec);
    fs::create_directories(staging);
  }
  dist::barrier("checkpoint staging");
  const fs::path shard = staging / policy::expert_shard_file(rank, size);
  policy::save_expert_shard(state_.model, shard.string());
  if (optimizer) {
    const std::string file =
        rank == 0 ? kOptimizerFile : "optimizer-ep" + std::to_string(rank) + ".safetensors";
    state_.opt.save((staging / file).string());
  }
  dist::barrier("checkpoint shards");
  if (db_ == nullptr) return {};
  const fs::path dir = output_dir_ / name;
  policy::SaveOptions so;
  so.copy_tokenizer_from = tokenizer_dir_;
  policy::write_dir_atomic(dir.string(), [&](const std::string& tmp) {
    for (const auto& f : fs::directory_iterator(staging)) {
      fs::rename(f.path(), fs::path(tmp) / f.path().filename());
    }
    policy::save_expert_shard_index(state_.model, tmp);
    policy::save_model_files(state_.model, tmp, so);
  });
  fs::remove_all(staging, ec);
  if (extra) extra(dir);
  return dir.string();
}

std::string Checkpointer::save_weights(const std::string& name, const ExtraFiles& extra) const {
  if (state_.model.config().ep.sharded) return save_sharded(name, false, extra);
  if (db_ == nullptr) return {};  // rank 0 owns the checkpoints and run.db
  const fs::path dir = output_dir_ / name;
  policy::SaveOptions so;
  so.copy_tokenizer_from = tokenizer_dir_;
  policy::save_model(state_.model, dir.string(), so);
  if (state_.model.config().lora.on()) {
    policy::save_adapters(state_.model, (dir / kAdapterDir).string());
  }
  if (extra) extra(dir);
  return dir.string();
}

std::string Checkpointer::save(const std::string& name, int64_t step, Json own,
                               const ExtraFiles& extra) {
  const std::string dir_name = name.empty() ? "checkpoint-" + std::to_string(step) : name;
  std::string dir;
  if (state_.model.config().ep.sharded) {
    dir = save_sharded(dir_name, true, extra);
    if (dir.empty()) return dir;
  } else {
    // Expert parallel with every expert held: the other ranks' expert moments to rank 0, for
    // one file any run can load.
    ExpertShards::Gathered others;
    if (state_.update.shards().on()) {
      others = state_.update.shards().gather_moments(state_.opt, state_.model.table());
    }
    dir = save_weights(dir_name, extra);
    if (dir.empty()) return dir;
    state_.opt.save((fs::path(dir) / kOptimizerFile).string(), others.moments);
  }
  own["step"] = step;
  own["cursor"] = state_.cursor.state();
  own["nan_streak"] = state_.update.nan_streak();
  save_json_file((fs::path(dir) / kStateFile).string(), own);
  db_->add_checkpoint(step, dir);
  return dir;
}

Json Checkpointer::load(const std::string& dir, policy::Model<float>& model,
                        policy::Optimizer<float>& opt) {
  Json state = load_json_file((fs::path(dir) / kStateFile).string());
  if (model.config().lora.on()) {  // the base stays the run's; only the adapters learned
    policy::load_adapters(model, (fs::path(dir) / kAdapterDir).string());
    opt.load((fs::path(dir) / kOptimizerFile).string());
    return state;
  }
  // Sharded experts: this rank reads only its own, whatever the EP size that wrote them.
  auto loaded = policy::load_model<float>(dir, policy::LoraConfig{}, model.config().ep);
  if (loaded->params().size() != model.params().size()) fail(dir, ": architecture differs");
  model.params() = loaded->params();
  opt.load((fs::path(dir) / kOptimizerFile).string());
  return state;
}

Json Checkpointer::resume(const std::string& dir, int64_t& step) {
  Json state;
  if (!dir.empty()) {
    state = load(dir, state_.model, state_.opt);
    step = state.at("step").get<int64_t>();
    state_.cursor.restore(state.at("cursor"));
    state_.update.set_nan_streak(state.value("nan_streak", 0));
    spdlog::info("resumed from {} (step {})", dir, step);
  }
  if (db_ != nullptr) db_->rewind_to(dir.empty() ? 0 : step);
  return state;
}

void Checkpointer::prune(int keep, int64_t also_keep) const {
  if (keep <= 0 || db_ == nullptr) return;
  const std::vector<Entry> found = complete(output_dir_);
  std::error_code ec;
  for (size_t i = static_cast<size_t>(keep); i < found.size(); ++i) {
    if (found[i].step == also_keep) continue;
    fs::remove_all(found[i].dir, ec);
    if (ec) {
      spdlog::warn("could not remove {}: {}", found[i].dir.string(), ec.message());
      continue;
    }
    db_->remove_checkpoint(found[i].step);
  }
}

}  // namespace aha::train
