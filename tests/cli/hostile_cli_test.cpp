// Hostile and careless use of the command line: deep JSON, FIFOs, huge sizes, NaN weights, two
// processes on one run directory, Ctrl-C during training, stale partial checkpoints.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "aha/core/config.h"
#include "aha/core/safetensors.h"
#include "run_aha.h"

namespace {

namespace fs = std::filesystem;
using aha::Json;
using aha::testing::CmdResult;
using aha::testing::expect_one_error_line;
using aha::testing::run_aha;

class Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("aha_hostile_cli_" + std::to_string(::getpid()));
    aha::testing::make_tiny_model(dir_);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  // A GRPO config of `steps` tiny steps writing into dir_/out.
  static std::string train_config(const std::string& out, int steps) {
    const std::string cfg = (dir_ / (out + ".json")).string();
    std::ofstream(cfg) << R"({"model": ")" << (dir_ / "model").string() << R"(",
      "output_dir": ")" << (dir_ / out).string() << R"(", "seed": 5,
      "data": {"train": "synthetic:addition", "template": "{prompt}"},
      "rewards": [{"name": "math"}], "sampling": {"max_new_tokens": 8},
      "grpo": {"steps": )" << steps << R"(, "prompts_per_step": 2, "group_size": 2, "save_every": 0},
      "optimizer": {"kind": "sgd"}, "schedule": {"lr": 0.01}})";
    return cfg;
  }
  static fs::path dir_;
};
fs::path Hostile::dir_;

TEST_F(Hostile, DeepJsonEverywhereIsOneErrorLine) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string cfg = (dir_ / "deep.json").string();
  std::ofstream(cfg) << "{\"model\": " << deep << "}";
  expect_one_error_line(run_aha("train --config " + cfg), "nested deeper");
  expect_one_error_line(run_aha("pretrain --config " + cfg), "nested deeper");
  expect_one_error_line(run_aha("init --config " + cfg + " --out " + (dir_ / "x").string()),
                        "nested deeper");
  expect_one_error_line(run_aha("tokenize --tokenizer " + (dir_ / "tok").string(), deep + "\n"),
                        "nested deeper");
  // A tokenizer.json / config.json nested deep inside a checkpoint directory.
  fs::copy(dir_ / "model", dir_ / "deepmodel", fs::copy_options::recursive);
  std::ofstream(dir_ / "deepmodel" / "config.json") << "{\"a\": " << deep << "}";
  expect_one_error_line(run_aha("score --model " + (dir_ / "deepmodel").string(), "{\"ids\":[1]}\n"),
                        "nested deeper");
}

TEST_F(Hostile, AFifoAsACheckpointFileDoesNotHang) {
  fs::copy(dir_ / "model", dir_ / "fifomodel", fs::copy_options::recursive);
  fs::remove(dir_ / "fifomodel" / "model.safetensors");
  ASSERT_EQ(::mkfifo((dir_ / "fifomodel" / "model.safetensors").c_str(), 0644), 0);
  const auto t0 = std::chrono::steady_clock::now();
  CmdResult r = run_aha("score --model " + (dir_ / "fifomodel").string(), "{\"ids\":[1,2]}\n");
  expect_one_error_line(r, "not a regular file");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
}

TEST_F(Hostile, HugeAndMistypedSizesAreErrorsNamingTheKey) {
  const std::string cfg = train_config("sizes", 1);
  expect_one_error_line(run_aha("train --dry-run --config " + cfg + " --set data.synthetic_size=4294967295000"),
                        "data.synthetic_size");
  expect_one_error_line(run_aha("train --dry-run --config " + cfg + " --set data.digits=3"), "data.digits");
  expect_one_error_line(run_aha("train --dry-run --config " + cfg + " --set grpo.steps=true"), "grpo.steps");
  expect_one_error_line(run_aha("train --dry-run --config " + cfg + " --set grpo.steps=2.5"), "grpo.steps");
  expect_one_error_line(run_aha("train --dry-run --config " + cfg + " --set data.train=synthetic:additon"),
                        "did you mean 'addition'");
  // A space of distinct problems smaller than asked for ends quickly with a warning.
  const auto t0 = std::chrono::steady_clock::now();
  CmdResult r = run_aha("train --dry-run --config " + cfg +
                        " --set data.digits=[1,1] --set data.synthetic_size=1000000");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
  EXPECT_NE(r.err.find("distinct problems"), std::string::npos) << r.err;
}

// RoPE parameters that would fill the rotation tables with NaN/Inf are refused at load (an
// infinite value cannot arrive: the JSON parser refuses 1e999 as an overflow).
TEST_F(Hostile, RopeParametersThatGiveNanAreRefused) {
  const Json base = aha::load_json_file((dir_ / "model" / "config.json").string());
  struct Case {
    const char* what;
    Json patch;
  } cases[] = {
      {"original_max_position_embeddings",
       {{"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 0}}}}},
      {"beta_slow", {{"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}, {"beta_fast", 1.0},
                                       {"beta_slow", 32.0}, {"original_max_position_embeddings", 16}}}}},
      {"low_freq_factor", {{"rope_scaling", {{"type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0},
                                             {"high_freq_factor", 1.0}}}}},
  };
  for (const Case& c : cases) {
    Json cfg = base;
    cfg.update(c.patch);
    const std::string path = (dir_ / "rope.json").string();
    std::ofstream(path) << cfg.dump();
    expect_one_error_line(run_aha("init --config " + path + " --out " + (dir_ / "rope").string()),
                          c.what);
  }
}

TEST_F(Hostile, NonFiniteWeightsAreRefusedAtLoad) {
  fs::copy(dir_ / "model", dir_ / "nanmodel", fs::copy_options::recursive);
  const fs::path st = dir_ / "nanmodel" / "model.safetensors";
  aha::TensorArchive a(st.string());
  const aha::TensorInfo info = a.info(a.names().front());
  // Overwrite the first float of the first tensor (in file order) with NaN.
  std::fstream f(st, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header = 0;
  f.read(reinterpret_cast<char*>(&header), 8);
  uint64_t first = UINT64_MAX;
  for (const std::string& n : a.names()) first = std::min<uint64_t>(first, a.info(n).begin);
  f.seekp(static_cast<std::streamoff>(8 + header + first));
  const float nan = std::nanf("");
  f.write(reinterpret_cast<const char*>(&nan), 4);
  f.close();
  (void)info;
  expect_one_error_line(run_aha("score --model " + (dir_ / "nanmodel").string(), "{\"ids\":[1,2]}\n"),
                        "non-finite");
}

TEST_F(Hostile, OneProcessPerRunDirectory) {
  const std::string cfg = train_config("locked", 100000);
  // Steps enough that the first run still trains when the second starts (40 steps were, until
  // GRPO steps got faster); it is killed below. The first run holds the directory while it
  // trains; the second is refused at once. `exec`: the pid killed below is aha's own, not a
  // shell's that would leave aha training on.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c",
            ("exec " + std::string(AHA_BINARY) + " train --config " + cfg + " > /dev/null 2>&1")
                .c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 600 && !fs::exists(dir_ / "locked" / "run.db"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  expect_one_error_line(run_aha("train --config " + cfg + " --resume"), "another aha process");
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

TEST_F(Hostile, CtrlCSavesAndPausesTheRun) {
  const std::string cfg = train_config("ctrlc", 200);
  const fs::path err = dir_ / "ctrlc.err";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execl(AHA_BINARY, AHA_BINARY, "train", "--config", cfg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Wait for the first progress line, then Ctrl-C.
  bool started = false;
  for (int i = 0; i < 1200 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    started = fs::exists(dir_ / "ctrlc" / "run.db") &&
              run_aha("runs " + (dir_ / "ctrlc" / "run.db").string()).out.find(" 0 steps") ==
                  std::string::npos;
  }
  ASSERT_TRUE(started);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  CmdResult runs = run_aha("runs " + (dir_ / "ctrlc" / "run.db").string());
  EXPECT_NE(runs.out.find("paused"), std::string::npos) << runs.out;
  bool has_checkpoint = false;
  for (const auto& e : fs::directory_iterator(dir_ / "ctrlc")) {
    has_checkpoint |= e.path().filename().string().rfind("checkpoint-", 0) == 0;
  }
  EXPECT_TRUE(has_checkpoint);
  // And it resumes.
  CmdResult more = run_aha("train --config " + cfg + " --resume --max-steps 1");
  EXPECT_EQ(more.rc, 0) << more.err;
}

TEST_F(Hostile, StalePartialCheckpointsAreSweptOnResume) {
  const std::string cfg = train_config("stale", 1);
  ASSERT_EQ(run_aha("train --config " + cfg).rc, 0);
  fs::create_directories(dir_ / "stale" / ".checkpoint-2.tmp.123.456");
  std::ofstream(dir_ / "stale" / ".checkpoint-2.tmp.123.456" / "model.safetensors") << "half";
  CmdResult r = run_aha("train --config " + cfg + " --resume --set grpo.steps=2");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "stale" / ".checkpoint-2.tmp.123.456"));
  EXPECT_TRUE(fs::exists(dir_ / "stale" / "checkpoint-2"));
}

TEST_F(Hostile, ReadOnlyRunDatabaseStillReads) {
  const std::string cfg = train_config("ro", 1);
  ASSERT_EQ(run_aha("train --config " + cfg).rc, 0);
  const fs::path ro = dir_ / "ro";
  fs::remove(ro / "run.db-shm");
  fs::remove(ro / "run.db-wal");
  fs::permissions(ro, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  // As root, permissions do not stop writes: read-only media are what the immutable open is
  // for; here it must at least not be called "not an aha run database".
  CmdResult r = run_aha("runs " + (ro / "run.db").string());
  fs::permissions(ro, fs::perms::owner_write, fs::perm_options::add);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err.find("not an aha run database"), std::string::npos) << r.err;
}

}  // namespace
