// `aha reward`: scores JSONL samples with the built-in rewards or plugins; one output line per
// input line, in order: {"reward": x, "rewards": {name: x}, "details": {...}}. A wrong answer
// scores 0 with a reason; a line that is not a sample (bad JSON, a missing field) ends the run
// with one error line unless --skip-bad-lines.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/rewards/reward.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {
namespace {

constexpr const char* kUsage =
    "usage: aha reward --reward NAME[,NAME..] [--params JSON] --input F.jsonl\n"
    "       aha reward --config REWARDS.json --input F.jsonl\n\n"
    "Input lines: math {\"completion\", \"answer\"}; code {\"completion\", \"tests\": {\"inputs\",\n"
    "\"outputs\"[, \"fn_name\"]}}; HumanEval {\"prompt\", \"completion\", \"test\", \"entry_point\"}.\n"
    "--params maps reward names to their params: '{\"math\": {\"rel_tol\": 1e-4}}'.\n"
    "--config holds [{\"name\": .., \"weight\": .., \"params\": {..}, \"label\": ..}, ...].\n"
    "rewards: math code format tag_count language length cosine repetition plugin command\n"
    "(see docs/rewards.md)";

// The reward spec from --config, or from --reward and --params.
Json reward_spec(const po::variables_map& vm) {
  if (vm.count("config")) {
    if (vm.count("reward")) fail("give --reward or --config, not both");
    return load_json_file(vm["config"].as<std::string>());
  }
  if (!vm.count("reward")) fail("--reward or --config is required (see --help)");
  Json params = Json::object();
  if (vm.count("params")) {
    params = parse_json(vm["params"].as<std::string>(), "--params");
    if (!params.is_object()) fail("--params must be a JSON object {name: params}");
  }
  Json spec = Json::array();
  for (const std::string& name : comma_list(vm["reward"].as<std::string>())) {
    Json entry = {{"name", name}, {"weight", 1.0}};
    if (params.contains(name)) entry["params"] = params[name];
    spec.push_back(entry);
  }
  for (auto it = params.begin(); it != params.end(); ++it) {
    bool used = false;
    for (const auto& e : spec) used |= e["name"] == it.key();
    if (!used) fail("--params names '", it.key(), "', which is not in --reward");
  }
  return spec;
}

Json error_line(const std::string& reason) {
  return {{"reward", 0.0}, {"rewards", Json::object()}, {"details", {{"error", reason}}}};
}

// The first reward of a scored line that says its row was bad input ("" when none).
std::string bad_input_of(const rewards::ScoredSample& s) {
  for (const auto& [label, d] : s.details.items()) {
    if (d.is_object() && d.value("bad_input", false)) return label + ": " + d.value("reason", "");
  }
  return "";
}

// Scores one batch of raw lines and writes the results in order. A line that is not a sample
// (not JSON, no completion, a field a reward needs missing) ends the run before anything of
// its batch is written, unless skip_bad: then it scores 0 with the reason.
void score_lines(const rewards::RewardSet& set, const std::vector<std::string>& lines,
                 size_t first_line, int threads, bool skip_bad, std::ostream& out) {
  std::vector<Json> rows(lines.size());
  std::vector<std::string> errors(lines.size());
  std::vector<rewards::Sample> samples;
  std::vector<size_t> index;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string why;
    rows[i] = try_parse_json(lines[i], &why).value_or(Json());
    if (!why.empty() || !rows[i].is_object()) {
      errors[i] = "line " + std::to_string(first_line + i) + ": " + (why.empty() ? "not a JSON object" : why);
      continue;
    }
    const Json& row = rows[i];
    if (!row.contains("completion") || !row["completion"].is_string()) {
      errors[i] = "line " + std::to_string(first_line + i) + ": no string \"completion\"";
      continue;
    }
    rewards::Sample s;
    s.completion = row["completion"].get_ref<const std::string&>();
    if (row.contains("prompt") && row["prompt"].is_string()) {
      s.prompt = row["prompt"].get_ref<const std::string&>();
    }
    if (row.contains("n_completion_tokens") && row["n_completion_tokens"].is_number_integer()) {
      s.n_completion_tokens = row["n_completion_tokens"].get<int64_t>();
    }
    s.row = &row;
    samples.push_back(s);
    index.push_back(i);
  }
  auto scored = set.score_batch(samples, threads);
  std::vector<Json> results(lines.size());
  for (size_t k = 0; k < index.size(); ++k) {
    results[index[k]] = scored[k].to_json();
    if (std::string bad = bad_input_of(scored[k]); !bad.empty() && !skip_bad) {
      errors[index[k]] = "line " + std::to_string(first_line + index[k]) + ": " + bad;
    }
  }
  if (!skip_bad) {
    for (const std::string& e : errors) {
      if (!e.empty()) fail(e, " (--skip-bad-lines scores such lines 0 and goes on)");
    }
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    const Json& j = errors[i].empty() ? results[i] : error_line(errors[i]);
    out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  }
  out.flush();
}

}  // namespace

int cmd_reward(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  desc.add_options()
      ("reward,r", po::value<std::string>(), "comma-separated reward names (weights 1)")
      ("params", po::value<std::string>(), "JSON object: reward name -> params")
      ("config", po::value<std::string>(), "JSON file: the weighted reward list")
      ("input,i", po::value<std::string>()->default_value("-"), "input JSONL ('-': stdin)")
      ("out,o", po::value<std::string>()->default_value("-"), "output JSONL ('-': stdout)")
      ("output", po::value<std::string>(), "the same as --out (older name)")
      ("skip-bad-lines", po::bool_switch(), "score malformed lines 0 with a reason instead of stopping")
      ("threads", po::value<int>()->default_value(0), "scoring threads (0: all cores)")
      ("batch", po::value<int>()->default_value(256), "lines scored together");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, kUsage)) return 0;
  auto registry = rewards::builtin_registry();
  auto set = rewards::RewardSet::from_json(reward_spec(vm), registry);
  int batch = vm["batch"].as<int>();
  if (batch < 1) fail("--batch must be >= 1");

  std::ifstream file;
  std::istream* in = &std::cin;
  const auto& input = vm["input"].as<std::string>();
  if (input != "-") {
    file.open(input);
    if (!file) fail("cannot read ", input, ": ", std::strerror(errno));
    in = &file;
  }
  // A file output is written beside and renamed at the end: a failed run leaves no half file.
  const std::string output =
      vm.count("output") ? vm["output"].as<std::string>() : vm["out"].as<std::string>();
  const std::string tmp = output + ".tmp." + std::to_string(::getpid());
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  if (output != "-") {
    out_file.open(tmp);
    if (!out_file) fail("cannot write ", output, ": ", std::strerror(errno));
    out = &out_file;
  }
  struct RemoveTmp {
    const std::string& path;
    bool keep = false;
    ~RemoveTmp() {
      if (!keep) std::remove(path.c_str());
    }
  } cleanup{tmp};
  const bool skip_bad = vm["skip-bad-lines"].as<bool>();
  std::vector<std::string> lines;
  size_t line_no = 1;
  std::string line;
  while (std::getline(*in, line)) {
    lines.push_back(std::move(line));
    if (static_cast<int>(lines.size()) == batch) {
      score_lines(set, lines, line_no, vm["threads"].as<int>(), skip_bad, *out);
      line_no += lines.size();
      lines.clear();
    }
  }
  if (!lines.empty()) score_lines(set, lines, line_no, vm["threads"].as<int>(), skip_bad, *out);
  if (in->bad()) fail("cannot read ", input, ": ", std::strerror(errno));
  out->flush();
  if (!*out) fail("write failed on ", output, ": ", std::strerror(errno));
  if (output != "-") {
    out_file.close();
    if (std::rename(tmp.c_str(), output.c_str()) != 0) {
      fail("cannot write ", output, ": ", std::strerror(errno));
    }
    cleanup.keep = true;
  }
  return 0;
}

}  // namespace aha::cli
