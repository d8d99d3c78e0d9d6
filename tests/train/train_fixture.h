// Shared by the train module's tests: a tiny model, its optimizer, a data cursor and a run
// database in a fresh temporary directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "aha/datasets/dataset.h"
#include "aha/policy/model.h"
#include "aha/policy/optimizer.h"
#include "aha/policy/presets.h"
#include "aha/runlog/run_db.h"

namespace aha::train::testing {

namespace fs = std::filesystem;

struct TinyRun {
  fs::path dir;
  std::unique_ptr<policy::Model<float>> model;
  std::unique_ptr<policy::Optimizer<float>> opt;
  std::unique_ptr<runlog::RunDb> db;
  datasets::DataCursor cursor{10, 1};

  explicit TinyRun(const std::string& name) {
    dir = fs::temp_directory_path() / ("aha_train_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    Json cfg = policy::preset_config("tiny");
    cfg.update(Json{{"vocab_size", 64}, {"num_hidden_layers", 1}, {"hidden_size", 32}});
    model = std::make_unique<policy::Model<float>>(policy::ModelConfig::from_json(cfg));
    model->init_random(1);
    opt = std::make_unique<policy::Optimizer<float>>(model->table(), policy::OptimizerConfig{});
    db = std::make_unique<runlog::RunDb>((dir / "run.db").string(), "test", Json::object(), "tiny",
                                         false);
  }
  ~TinyRun() {
    db.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  // Every gradient set to g (as if backward had written it).
  void fill_grads(float g) { model->grads().assign(model->grads().size(), g); }
  int64_t events(const std::string& kind) const {
    return db->query("SELECT COUNT(*) AS n FROM events WHERE kind = '" + kind + "'")[0]["n"];
  }
};

}  // namespace aha::train::testing
