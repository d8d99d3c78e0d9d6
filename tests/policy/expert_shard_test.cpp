// Sharded expert parallelism (ModelConfig::ep.sharded): a rank allocates, loads and writes only
// its own block of routed experts, and the ranks' shards together are the whole HF checkpoint.
// No MPI here: each rank's model is built in this one process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "aha/core/error.h"
#include "aha/policy/checkpoint.h"
#include "checkpoint_helpers.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;
using testing::temp_dir;

std::string expert_name(int layer, int e, const char* proj) {
  return "model.layers." + std::to_string(layer) + ".mlp.experts." + std::to_string(e) + "." +
         proj + ".weight";
}

size_t expert_values(const Model<float>& m) {
  size_t n = 0;
  for (const ParamEntry& e : m.table().entries()) {
    if (e.name.find(".mlp.experts.") != std::string::npos) n += e.numel;
  }
  return n;
}

// The tiny V3 model (8 experts in layer 1) whole, saved; rank r of 2 loads experts 4r..4r+3.
TEST(ExpertShard, EachRankAllocatesAndLoadsOnlyItsExperts) {
  const ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> whole(c);
  whole.init_random(11);
  const std::string dir = temp_dir("ep_whole");
  save_model(whole, dir);
  for (int r = 0; r < 2; ++r) {
    auto m = load_model<float>(dir, LoraConfig{}, ExpertParallel{r, 2, true});
    EXPECT_EQ(2 * expert_values(*m), expert_values(whole)) << "rank " << r;
    EXPECT_EQ(m->params().size() + expert_values(whole) / 2, whole.params().size());
    EXPECT_EQ(m->grads().size(), m->params().size());
    for (int e = 0; e < 8; ++e) {
      const std::string name = expert_name(1, e, "down_proj");
      EXPECT_EQ(m->table().contains(name), e / 4 == r) << name;
    }
    for (const ParamEntry& e : m->table().entries()) {
      const float* w = whole.params().data() + whole.table().at(e.name).offset;
      const float* s = m->params().data() + e.offset;
      EXPECT_TRUE(std::equal(s, s + e.numel, w)) << e.name;
    }
    // Random init gives a rank's tensors the values the whole model's have.
    ModelConfig cs = c;
    cs.ep = ExpertParallel{r, 2, true};
    Model<float> fresh(cs);
    fresh.init_random(11);
    EXPECT_EQ(fresh.params(), m->params());
    // A forward without the dispatch would need the other rank's experts.
    Activations<float> acts;
    expect_error([&] { m->forward(Batch::from_sequences({{1, 2, 3}}), ForwardOptions{}, acts); },
                 "parallel.ep");
  }
  fs::remove_all(dir);
}

// The ranks' shards plus rank 0's index are the ordinary sharded HF layout: one rank loads the
// whole model from them. A checkpoint that holds only rank 0's experts serves rank 0 alone.
TEST(ExpertShard, ShardsMakeTheWholeCheckpoint) {
  const ModelConfig c = ModelConfig::from_json(testing::tiny_v3_json());
  Model<float> whole(c);
  whole.init_random(5);
  const std::string src = temp_dir("ep_src"), dir = temp_dir("ep_shards");
  save_model(whole, src);
  fs::create_directories(dir);
  std::unique_ptr<Model<float>> ranks[2];
  for (int r = 0; r < 2; ++r) {
    ranks[r] = load_model<float>(src, LoraConfig{}, ExpertParallel{r, 2, true});
    save_expert_shard(*ranks[r], (fs::path(dir) / expert_shard_file(r, 2)).string());
  }
  save_expert_shard_index(*ranks[0], dir);
  save_model_files(*ranks[0], dir, SaveOptions{});
  EXPECT_EQ(load_model<float>(dir)->params(), whole.params());
  EXPECT_EQ(load_model<float>(dir, LoraConfig{}, ExpertParallel{1, 2, true})->params(),
            ranks[1]->params());

  const std::string only0 = temp_dir("ep_only0");
  fs::create_directories(only0);
  fs::copy_file(fs::path(dir) / expert_shard_file(0, 2), fs::path(only0) / "model.safetensors");
  fs::copy_file(fs::path(dir) / "config.json", fs::path(only0) / "config.json");
  EXPECT_EQ(load_model<float>(only0, LoraConfig{}, ExpertParallel{0, 2, true})->params(),
            ranks[0]->params());
  expect_error([&] { load_model<float>(only0, LoraConfig{}, ExpertParallel{1, 2, true}); },
               "experts.4");
  for (const std::string& d : {src, dir, only0}) fs::remove_all(d);
}

}  // namespace
}  // namespace aha::policy
