// Distillation end to end on tiny models: a teacher trained briefly on 1-digit addition is
// rejection-sampled (filters counted, resumable, deduplicated) and a Llama student trained on its
// samples matches the teacher's accuracy; resume equals a straight run; ESFT freezes what it
// must; online and on-policy KD run; bad configs are clear errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "aha/core/error.h"
#include "aha/datasets/synthetic.h"
#include "aha/distill/common.h"
#include "aha/distill/sample.h"
#include "aha/distill/train.h"
#include "aha/tokenizer/bpe_trainer.h"
#include "aha/policy/checkpoint.h"
#include "aha/policy/esft.h"
#include "aha/policy/presets.h"
#include "aha/runlog/run_db.h"
#include "train/stopped_run.h"

namespace aha::distill {
namespace {

namespace fs = std::filesystem;

const char* const kTemplate = "User: {prompt} Assistant:";

fs::path root() {
  static fs::path r = [] {
    fs::path p = fs::temp_directory_path() / ("aha_distill_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return r;
}

// All 100 one-digit additions with the prompt template and an answer-only completion.
std::vector<datasets::Example> problems() {
  datasets::AdditionTask t;
  t.min_digits = t.max_digits = 1;
  t.split = "all";
  return datasets::addition_problems(100, 1, t, false);
}

// A BPE tokenizer for the task, made once.
std::string tokenizer_dir() {
  const fs::path tok = root() / "tokenizer";
  if (fs::exists(tok / "tokenizer.json")) return tok.string();
  fs::create_directories(tok);
  tokenizer::BpeTrainerOptions bo;
  bo.vocab_size = 300;
  tokenizer::BpeTrainer bt(bo);
  for (int i = 0; i < 20; ++i) {
    for (const auto& ex : problems()) {
      bt.add_text(std::string("User: ") + ex.row["question"].get<std::string>() +
                  " Assistant: <answer> " + ex.row["answer"].get<std::string>() + " </answer>");
    }
  }
  save_json_file((tok / "tokenizer.json").string(), bt.finish());
  save_json_file((tok / "tokenizer_config.json").string(), bt.tokenizer_config());
  return tok.string();
}

// A random checkpoint (MoE or Llama) with that tokenizer.
std::string checkpoint(const std::string& name, bool moe) {
  const fs::path dir = root() / name;
  if (fs::exists(dir / "model.safetensors")) return dir.string();
  Json cfg;
  if (moe) {
    cfg = policy::preset_config("tiny");
    cfg.update(Json{{"num_hidden_layers", 2},
                    {"hidden_size", 64},
                    {"n_routed_experts", 8},
                    {"num_experts_per_tok", 2},
                    {"moe_intermediate_size", 32}});
  } else {
    cfg = student_preset("llama", 300);
    cfg.update(Json{{"hidden_size", 64}, {"num_hidden_layers", 2}, {"intermediate_size", 128}});
  }
  cfg["vocab_size"] = 300;
  cfg["bos_token_id"] = 0;
  cfg["eos_token_id"] = 1;
  policy::Model<float> m(policy::ModelConfig::from_json(cfg));
  m.init_random(1);
  policy::SaveOptions so;
  so.copy_tokenizer_from = tokenizer_dir();
  policy::save_model(m, dir.string(), so);
  return dir.string();
}

// Ground-truth SFT rows (what a perfect teacher would give).
std::string truth_jsonl() {
  const fs::path p = root() / "truth.jsonl";
  if (fs::exists(p)) return p.string();
  auto templ = datasets::PromptTemplate(kTemplate);
  std::ofstream out(p);
  for (const auto& ex : problems()) {
    out << Json{{"prompt", templ.render_row(ex.row)},
                {"completion", " <answer> " + ex.row["answer"].get<std::string>() + " </answer>"}}
               .dump()
        << "\n";
  }
  return p.string();
}

Json train_config(const std::string& out, const std::string& data) {
  return Json{{"student_config", "llama"},
              {"tokenizer", tokenizer_dir()},
              {"output_dir", out},
              {"seed", 2},
              {"data", {{"train", data}}},
              {"steps", 4},
              {"batch_tokens", 256},
              {"schedule",
               {{"kind", "cosine"}, {"lr", 3e-3}, {"warmup_steps", 10}, {"min_lr_ratio", 0.1}}}};
}

std::string fresh(const std::string& name) {
  fs::path p = root() / name;
  fs::remove_all(p);
  return p.string();
}

double greedy_accuracy(const std::string& model_dir) {
  auto model = policy::load_model<float>(model_dir);
  auto tok = tokenizer::Tokenizer::load(model_dir);
  auto rset = rewards::RewardSet::from_json(Json::array({Json{{"name", "math"}}}),
                                            rewards::builtin_registry());
  rollout::SamplingParams sp;
  sp.temperature = 0;
  sp.max_new_tokens = 12;
  return accuracy(*model, tok, problems(), datasets::PromptTemplate(kTemplate), rset, "math", sp, 0)
      .accuracy();
}

int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string l; std::getline(in, l);) n += !l.empty();
  return n;
}

TEST(DistillFilters, TagsAndReadability) {
  EXPECT_TRUE(tags_balanced("<think> a </think> <answer> 3 </answer>"));
  EXPECT_TRUE(tags_balanced("<answer> 3 </answer>"));
  EXPECT_TRUE(tags_balanced("just text"));
  EXPECT_FALSE(tags_balanced("<think> a <answer> 3 </answer>"));
  EXPECT_FALSE(tags_balanced("</think> a <think>"));
  EXPECT_FALSE(tags_balanced("<answer> 3 </answer><answer> 4 </answer>"));
  FilterConfig f;
  EXPECT_EQ(readability(f, 20, "<answer> 3 </answer>", 5, "stop"), Verdict::kKept);
  EXPECT_EQ(readability(f, 20, "<answer> 3 </answer>", 20, "length"), Verdict::kOverlong);
  f.max_completion_tokens = 4;
  EXPECT_EQ(readability(f, 20, "<answer> 3 </answer>", 5, "stop"), Verdict::kOverlong);
  f.max_completion_tokens = 0;
  EXPECT_EQ(
      readability(f, 20, "<think> 因为 three plus 两个 </think> <answer> 3 </answer>", 9, "stop"),
      Verdict::kMixedLanguage);
  EXPECT_EQ(readability(f, 20, "<think> because three </think> <answer> 3 </answer>", 9, "stop"),
            Verdict::kKept);
  EXPECT_EQ(readability(f, 20, "<think> 1 + 2 </think> <answer> 3 </answer> </think>", 9, "stop"),
            Verdict::kUnbalancedTags);
}

TEST(DistillConfig, BadConfigsAreClearErrors) {
  Json good = train_config("/tmp/x", "x.jsonl");
  EXPECT_NO_THROW(DistillConfig::from_json(good));
  Json j = good;
  j["stepz"] = 3;
  EXPECT_THROW(DistillConfig::from_json(j), Error);
  j = good;
  j["output_dir"] = "";
  EXPECT_THROW(DistillConfig::from_json(j), Error);
  j = good;
  j["student"] = "somewhere";
  EXPECT_THROW(DistillConfig::from_json(j), Error);  // both student and student_config
  j = good;
  j["kd"] = {{"weight", 1.0}, {"on_policy", true}};
  EXPECT_THROW(DistillConfig::from_json(j), Error);  // on-policy needs the online teacher
  j = good;
  j["kd"] = {{"weight", 1.0}, {"source", "online"}};
  EXPECT_THROW(DistillConfig::from_json(j), Error);  // online needs a teacher
  j = good;
  j["esft"] = {{"share", 1.5}};
  EXPECT_THROW(DistillConfig::from_json(j), Error);
  EXPECT_THROW(SampleConfig::from_json(Json{{"teacher", "t"},
                                            {"output", "o"},
                                            {"data", {{"train", "x"}}},
                                            {"filters", {{"language", "klingon"}}}}),
               Error);
}

// The proof of issue 8: teacher accuracy A_t, student trained only on the teacher's rejection
// samples reaches A_s >= A_t - 0.15 (greedy, all 100 one-digit additions).
TEST(DistillPipeline, StudentOnTeacherSamplesMatchesTeacherAccuracy) {
  // Teacher: a tiny MoE trained briefly on ground truth, so it is good but not perfect.
  const std::string tdir = fresh("teacher");
  Json tc = train_config(tdir, truth_jsonl());
  tc.erase("student_config");
  tc["student"] = checkpoint("moe_init", true);
  tc["steps"] = 300;
  DistillConfig tcfg = DistillConfig::from_json(tc);
  run_distill(tcfg, tc, false);
  const std::string teacher = tdir + "/final";
  const double teacher_acc = greedy_accuracy(teacher);
  ASSERT_GE(teacher_acc, 0.3)
      << "the teacher must have learnt something for the test to mean anything";

  const std::string sft = root() / "samples.jsonl";
  Json sc = {{"teacher", teacher},
             {"output", sft},
             {"seed", 5},
             {"data",
              {{"train", "synthetic:addition"},
               {"digits", {1, 1}},
               {"split", "all"},
               {"synthetic_size", 100},
               {"template", kTemplate}}},
             // Rejection sampling keeps only answers given in the answer tag: the checker's
             // fallbacks (the last number of " <answer> > 8 </answer>") are for grading, not
             // for choosing SFT data.
             {"rewards", Json::array({Json{{"name", "math"},
                                           {"params", {{"extraction", {"answer_tag", "boxed"}}}}}})},
             {"samples_per_prompt", 4},
             {"store_topk", 8},
             {"prompts_per_chunk", 32},
             {"sampling", {{"temperature", 1.0}, {"max_new_tokens", 12}}}};
  SampleStats st = run_sample(SampleConfig::from_json(sc));
  EXPECT_EQ(st.prompts, 100);
  EXPECT_EQ(st.generated, 400);
  int64_t sum = 0;
  for (const auto& [k, v] : st.counts) sum += v;
  EXPECT_EQ(sum, 400);
  EXPECT_GT(st.counts["wrong"], 0) << "rejection sampling rejected nothing";
  EXPECT_EQ(count_lines(sft), st.counts["kept"]);
  const int64_t rows = count_lines(sft);
  // Resume: every prompt is done, nothing is redone.
  EXPECT_EQ(run_sample(SampleConfig::from_json(sc)).generated, 400);
  EXPECT_EQ(count_lines(sft), rows);
  // Forget the finished prompts: the same samples come again and are all duplicates.
  fs::remove(sft + ".done");
  SampleStats again = run_sample(SampleConfig::from_json(sc));
  EXPECT_EQ(count_lines(sft), rows);
  EXPECT_EQ(again.generated, 800);
  EXPECT_EQ(again.counts["kept"], st.counts["kept"]);
  // Every completion kept or deduplicated the first time is a duplicate now.
  EXPECT_EQ(again.counts["duplicate"] - st.counts["duplicate"],
            st.counts["kept"] + st.counts["duplicate"]);

  const std::string sdir = fresh("student");
  Json dc = train_config(sdir, sft);
  // The teachers' learning rate (3e-3) left this student's accuracy to the GEMM kernel's
  // rounding and the seed: 0.15 to 0.93 over OpenBLAS's AVX2 and AVX-512 kernels, seeds 2-4 and
  // 300-800 steps. At 1e-3 the same 21 runs all landed at 0.81-0.93 (teacher 0.84).
  dc["steps"] = 300;
  dc["schedule"]["lr"] = 1e-3;
  run_distill(DistillConfig::from_json(dc), dc, false);
  const double student_acc = greedy_accuracy(sdir + "/final");
  std::printf("teacher accuracy %.3f, student accuracy %.3f, %lld SFT rows\n", teacher_acc,
              student_acc, static_cast<long long>(rows));
  EXPECT_GE(student_acc, teacher_acc - 0.15);
}

TEST(DistillTrain, ResumeEqualsStraightRunAndSavesHfLayout) {
  const std::string a = fresh("straight"), b = fresh("resumed");
  Json ca = train_config(a, truth_jsonl()), cb = train_config(b, truth_jsonl());
  ca["save_every"] = cb["save_every"] = 2;
  run_distill(DistillConfig::from_json(ca), ca, false);
  run_distill(DistillConfig::from_json(cb), cb, false, 2);
  EXPECT_FALSE(fs::exists(b + "/final"));
  run_distill(DistillConfig::from_json(cb), cb, true);
  auto wa = policy::load_model<float>(a + "/final");
  auto wb = policy::load_model<float>(b + "/final");
  EXPECT_TRUE(wa->params() == wb->params()) << "2 + 2 steps differ from 4 steps";
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json", "generation_config.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(a) / "final" / f)) << f;
  }
  Json cfg = load_json_file(a + "/final/config.json");
  EXPECT_EQ(cfg["model_type"], "llama");
  EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
  auto db = runlog::RunDb::open_readonly(b + "/run.db");
  EXPECT_EQ(db->query("SELECT COUNT(*) AS n FROM steps")[0]["n"], 4);
  EXPECT_EQ(db->query("SELECT status FROM runs")[0]["status"], "finished");
  // each start (the first and the resume) logged what the run is, as aha train does
  const Json starts =
      db->query("SELECT step, message FROM events WHERE kind = 'start' ORDER BY id");
  ASSERT_EQ(starts.size(), 2u) << starts.dump();
  const Json first = Json::parse(starts[0]["message"].get<std::string>());
  const Json again = Json::parse(starts[1]["message"].get<std::string>());
  for (const char* key : {"aha", "student", "model_type", "parameters", "teacher", "mode", "data",
                          "examples", "steps", "from_step", "output_dir", "resumed"}) {
    EXPECT_TRUE(first.contains(key)) << key << " missing from " << first.dump();
  }
  EXPECT_EQ(first["output_dir"], b);
  EXPECT_EQ(first["steps"], 4);
  EXPECT_EQ(first["mode"], "sft");
  EXPECT_GT(first["parameters"].get<int64_t>(), 0);
  EXPECT_GT(first["examples"].get<int64_t>(), 0);
  EXPECT_EQ(first["resumed"], false);
  EXPECT_EQ(again["resumed"], true);
  EXPECT_EQ(again["from_step"], 2);
  EXPECT_EQ(starts[1]["step"], 2);
}

TEST(DistillTrain, EsftTrainsOnlySelectedExperts) {
  const std::string out = fresh("esft");
  Json c = train_config(out, truth_jsonl());
  c.erase("student_config");
  c["student"] = checkpoint("moe_init", true);
  c["esft"] = {{"enabled", true}, {"share", 0.5}, {"include_shared", false}, {"score_batches", 2}};
  c["steps"] = 2;
  run_distill(DistillConfig::from_json(c), c, false);
  Json info = load_json_file(out + "/esft.json");
  const double share = info["report"]["trainable_share"];
  EXPECT_GT(share, 0.0);
  EXPECT_LT(share, 0.5);
  auto before = policy::load_model<float>(checkpoint("moe_init", true));
  auto after = policy::load_model<float>(out + "/final");
  auto sel = policy::EsftSelection::from_json(info["selection"]);
  auto mask = policy::trainable_mask(*after, sel);
  const auto& entries = after->table().entries();
  int moved_trainable = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    bool moved = false;
    for (size_t j = 0; j < entries[i].numel; ++j) {
      moved |= after->params()[entries[i].offset + j] != before->params()[entries[i].offset + j];
    }
    if (!mask[i]) {
      EXPECT_FALSE(moved) << entries[i].name;
    }
    moved_trainable += mask[i] && moved;
  }
  EXPECT_GT(moved_trainable, 0);
}

// SFT with LoRA on a pretrained student: final/ is the merged model (it moved), final/adapter/ the
// PEFT files, whose adapters on the student's base give the merged model back; LoRA needs a
// student checkpoint.
TEST(DistillTrain, LoraAdaptsAFrozenStudent) {
  const std::string out = fresh("lora");
  Json c = train_config(out, truth_jsonl());
  c.erase("student_config");
  c["student"] = checkpoint("lora_student", false);
  c["lora"] = {{"rank", 4}, {"alpha", 8}, {"target_modules", {"q_proj", "v_proj", "down_proj"}}};
  c["schedule"] = {{"lr", 1e-2}};
  c["steps"] = 3;
  run_distill(DistillConfig::from_json(c), c, false);
  auto base = policy::load_model<float>(c["student"].get<std::string>());
  auto merged = policy::load_model<float>(out + "/final");
  EXPECT_FALSE(merged->params() == base->params()) << "the adapters learned nothing";
  const DistillConfig dc = DistillConfig::from_json(c);
  auto adapted = policy::load_model<float>(c["student"].get<std::string>(), dc.lora);
  policy::load_adapters(*adapted, out + "/final/adapter");
  const std::string again = fresh("lora_merged_again");
  policy::save_model(*adapted, again);
  EXPECT_TRUE(policy::load_model<float>(again)->params() == merged->params());
  // LoRA dropout reaches the SFT update: the same run with it ends elsewhere.
  Json d = c;
  d["output_dir"] = fresh("lora_dropout");
  d["lora"]["dropout"] = 0.2;
  run_distill(DistillConfig::from_json(d), d, false);
  EXPECT_FALSE(policy::load_model<float>(d["output_dir"].get<std::string>() + "/final")->params() ==
               merged->params());
  Json bad = train_config(fresh("lora_bad"), truth_jsonl());
  bad["lora"] = {{"rank", 4}};
  EXPECT_THROW(DistillConfig::from_json(bad), Error);  // student_config: nothing to adapt
}

// DeepSeek-V3's MTP loss in SFT: on the completion tokens only, it falls as the module learns;
// a student without the module is refused by name.
TEST(DistillTrain, MtpLossOnCompletionTokensFalls) {
  const std::string mtp_ckpt = (root() / "mtp_init").string();
  if (!fs::exists(fs::path(mtp_ckpt) / "model.safetensors")) {
    Json cfg = load_json_file(checkpoint("moe_init", true) + "/config.json");
    cfg["num_nextn_predict_layers"] = 1;
    policy::Model<float> m(policy::ModelConfig::from_json(cfg));
    m.init_random(3);
    policy::SaveOptions so;
    so.copy_tokenizer_from = tokenizer_dir();
    policy::save_model(m, mtp_ckpt, so);
  }
  Json c = train_config(fresh("mtp_sft"), truth_jsonl());
  c.erase("student_config");
  c["student"] = mtp_ckpt;
  c["mtp_weight"] = 1.0;
  c["steps"] = 12;
  c["schedule"] = {{"lr", 3e-3}};
  std::vector<double> mtp;
  run_distill(DistillConfig::from_json(c), c, false, 0,
              [&](const DistillReport& r) { mtp.push_back(r.metrics["mtp_loss"]); });
  ASSERT_EQ(mtp.size(), 12u);
  EXPECT_GT(mtp.front(), 0.0);
  EXPECT_LT(mtp.back(), mtp.front() - 0.3) << mtp.front() << " -> " << mtp.back();
  Json plain = train_config(fresh("mtp_plain"), truth_jsonl());
  plain["mtp_weight"] = 1.0;
  try {
    run_distill(DistillConfig::from_json(plain), plain, false);
    ADD_FAILURE() << "a student without an MTP module was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_nextn_predict_layers"), std::string::npos) << e.what();
  }
}

TEST(DistillTrain, OnlineAndOnPolicyKdLowerTheKl) {
  const std::string teacher = checkpoint("moe_init", true);
  for (bool on_policy : {false, true}) {
    const std::string out = fresh(on_policy ? "onpolicy" : "online");
    Json c = train_config(out, truth_jsonl());
    c["teacher"] = teacher;
    c["steps"] = 12;
    c["kd"] = {{"weight", 1.0},          {"sft_weight", 0.0},
               {"source", "online"},     {"top_k", 16},
               {"on_policy", on_policy}, {"direction", on_policy ? "reverse" : "forward"},
               {"prompts_per_step", 8},  {"sampling", {{"max_new_tokens", 8}}}};
    std::vector<double> kl;
    run_distill(DistillConfig::from_json(c), c, false, 0,
                [&](const DistillReport& r) { kl.push_back(r.metrics["kl"]); });
    ASSERT_EQ(kl.size(), 12u);
    EXPECT_LT(kl.back(), kl.front()) << (on_policy ? "on-policy" : "online");
  }
}

// The update rule shared with GRPO and pretraining: non-finite updates are skipped, and more than
// max_nan_skips in a row end the run (marked failed, no final student).
TEST(DistillTrain, StopsAfterMaxNanSkipsNonFiniteUpdates) {
  const std::string out = fresh("nan");
  Json c = train_config(out, truth_jsonl());
  c["steps"] = 20;
  c["max_nan_skips"] = 1;
  c["schedule"] = {{"lr", 1e30}};  // overflows the weights after one step
  train::testing::expect_stopped_by_nan(
      [&] { run_distill(DistillConfig::from_json(c), c, false); }, out, 1);
  c["max_nan_skips"] = -1;
  EXPECT_THROW(DistillConfig::from_json(c), Error);
}

}  // namespace
}  // namespace aha::distill
