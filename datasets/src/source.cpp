// Loading prompt datasets (files or synthetic generators) from a config's "data" object:
// shared by GRPO, evaluation and distillation.
#include "aha/datasets/source.h"

#include <spdlog/spdlog.h>

#include <cstdint>

#include "aha/core/config.h"
#include "aha/core/error.h"
#include "aha/datasets/synthetic.h"

namespace aha::datasets {

std::vector<std::string> data_keys() {
  return {"train", "eval", "format", "limit", "digits", "synthetic_size", "split", "template",
          "eval_fraction", "numbers", "max_number", "system_prompt", "chat_template_kwargs"};
}

namespace {

// data.<key> as an integer in [lo, hi] (fallback when absent), or one error line naming it.
int64_t int_key(const Json& data, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  auto it = data.find(key);
  if (it == data.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi ||
      (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(hi))) {
    fail("data.", key, ": expected an integer from ", lo, " to ", hi, ", got ", json_excerpt(*it));
  }
  return it->get<int64_t>();
}

// data.<key> as [min, max] integers in [lo, hi].
std::vector<int> range_key(const Json& data, const std::string& key, std::vector<int> fallback,
                           int lo, int hi) {
  auto it = data.find(key);
  if (it == data.end() || it->is_null()) return fallback;
  auto in_range = [&](const Json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  };
  if (!it->is_array() || it->size() != 2 || !in_range((*it)[0]) || !in_range((*it)[1]) ||
      (*it)[0].get<int>() > (*it)[1].get<int>()) {
    fail("data.", key, ": expected [min, max] with ", lo, " <= min <= max <= ", hi, ", got ",
         json_excerpt(*it));
  }
  return {(*it)[0].get<int>(), (*it)[1].get<int>()};
}

}  // namespace

std::vector<Example> load_examples(const Json& data, const std::string& key,
                                             uint64_t seed) {
  const auto src_it = data.find(key);
  if (src_it == data.end() || !src_it->is_string() || src_it->get<std::string>().empty()) {
    fail("data.", key, " is required (a JSONL path or synthetic:<task>)");
  }
  const std::string src = src_it->get<std::string>();
  const std::vector<int> digits = range_key(data, "digits", {1, 2}, 1, 18);
  const int64_t size = int_key(data, "synthetic_size", 2000, 1, 10'000'000);
  std::vector<Example> rows;
  if (src == "synthetic:arithmetic") {
    rows = synthetic_arithmetic(size, seed, digits[0], digits[1]);
  } else if (src == "synthetic:linear") {
    rows = linear_equations(size, seed, std::max(2, digits[1] * 5),
                                      data.value("split", key == "eval" ? "eval" : "train"));
  } else if (src == "synthetic:addition") {
    AdditionTask t;
    t.min_digits = digits[0];
    t.max_digits = digits[1];
    t.split = data.value("split", key == "eval" ? "eval" : "train");
    rows = addition_problems(size, seed, t, false);
  } else if (src == "synthetic:countdown") {
    CountdownTask t;
    const std::vector<int> numbers = range_key(data, "numbers", {3, 4}, 2, 8);
    t.min_numbers = numbers[0];
    t.max_numbers = numbers[1];
    t.max_number = static_cast<int>(int_key(data, "max_number", 25, 1, 1'000'000));
    t.split = data.value("split", key == "eval" ? "eval" : "train");
    rows = countdown_problems(size, seed, t, false);
  } else if (src.rfind("synthetic:", 0) == 0) {
    fail("data.", key, ": unknown synthetic task '", src.substr(10), "'", did_you_mean(src.substr(10),
         {"arithmetic", "linear", "addition", "countdown"}), " (synthetic:arithmetic, synthetic:linear,",
         " synthetic:addition, synthetic:countdown)");
  } else {
    LoadStats st;
    rows = load_jsonl(src, DataFormat::from_json(data.value("format", Json::object())), &st);
    if (st.skipped > 0) {
      spdlog::warn("{}: skipped {} malformed lines (first: {})", src, st.skipped, st.first_skipped);
    }
    if (st.duplicates > 0) spdlog::info("{}: dropped {} duplicate prompts", src, st.duplicates);
    // A file split by question hash: the same file can feed data.train and data.eval.
    const double frac = data.value("eval_fraction", 0.0);
    if (frac > 0) rows = split_rows(std::move(rows), frac, data.value("split", key == "eval" ? "eval" : "train"));
  }
  const int64_t limit = int_key(data, "limit", 0, 0, INT64_MAX);
  if (limit > 0 && static_cast<int64_t>(rows.size()) > limit) rows.resize(limit);
  if (rows.empty()) fail("the dataset ", src, " is empty");
  if (src.rfind("synthetic:", 0) == 0 && static_cast<int64_t>(rows.size()) < size && limit == 0) {
    spdlog::warn("{}: only {} distinct problems at these settings (data.synthetic_size = {})", src,
                 rows.size(), size);
  }
  return rows;
}

}  // namespace aha::datasets
