// `aha reward`: scores JSONL samples with the built-in rewards or plugins; one output line per
// input line, in order: {"reward": x, "rewards": {name: x}, "details": {...}}. A line that
// cannot be judged scores 0 with a reason; only bad options or an unreadable input end the run.
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

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
    params = Json::parse(vm["params"].as<std::string>(), nullptr, false);
    if (!params.is_object()) fail("--params must be a JSON object {name: params}");
  }
  Json spec = Json::array();
  std::stringstream names(vm["reward"].as<std::string>());
  std::string name;
  while (std::getline(names, name, ',')) {
    if (name.empty()) continue;
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

// Scores one batch of raw lines and writes the results in order.
void score_lines(const rewards::RewardSet& set, const std::vector<std::string>& lines,
                 size_t first_line, int threads, std::ostream& out) {
  std::vector<Json> rows(lines.size());
  std::vector<std::string> errors(lines.size());
  std::vector<rewards::Sample> samples;
  std::vector<size_t> index;
  for (size_t i = 0; i < lines.size(); ++i) {
    rows[i] = Json::parse(lines[i], nullptr, false);
    if (rows[i].is_discarded() || !rows[i].is_object()) {
      errors[i] = "line " + std::to_string(first_line + i) + ": not a JSON object";
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
  for (size_t k = 0; k < index.size(); ++k) results[index[k]] = scored[k].to_json();
  for (size_t i = 0; i < lines.size(); ++i) {
    const Json& j = errors[i].empty() ? results[i] : error_line(errors[i]);
    out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  }
  out.flush();
}

}  // namespace

int cmd_reward(const Args& args) {
  po::options_description desc("options");
  desc.add_options()
      ("reward,r", po::value<std::string>(), "comma-separated reward names (weights 1)")
      ("params", po::value<std::string>(), "JSON object: reward name -> params")
      ("config", po::value<std::string>(), "JSON file: the weighted reward list")
      ("input,i", po::value<std::string>()->default_value("-"), "input JSONL ('-': stdin)")
      ("output,o", po::value<std::string>()->default_value("-"), "output JSONL ('-': stdout)")
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
    if (!file) fail("cannot read ", input);
    in = &file;
  }
  std::ofstream out_file;
  std::ostream* out = &std::cout;
  const auto& output = vm["output"].as<std::string>();
  if (output != "-") {
    out_file.open(output);
    if (!out_file) fail("cannot write ", output);
    out = &out_file;
  }
  std::vector<std::string> lines;
  size_t line_no = 1;
  std::string line;
  while (std::getline(*in, line)) {
    lines.push_back(std::move(line));
    if (static_cast<int>(lines.size()) == batch) {
      score_lines(set, lines, line_no, vm["threads"].as<int>(), *out);
      line_no += lines.size();
      lines.clear();
    }
  }
  if (!lines.empty()) score_lines(set, lines, line_no, vm["threads"].as<int>(), *out);
  if (!*out) fail("write failed on ", output);
  return 0;
}

}  // namespace aha::cli
