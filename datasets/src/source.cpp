// Loading prompt datasets (files or synthetic generators) from a config's "data" object:
// shared by GRPO, evaluation and distillation.
#include "aha/datasets/source.h"

#include <spdlog/spdlog.h>

#include "aha/core/error.h"
#include "aha/datasets/synthetic.h"

namespace aha::datasets {

std::vector<std::string> data_keys() {
  return {"train", "eval", "format", "limit", "digits", "synthetic_size", "split", "template",
          "eval_fraction", "numbers", "max_number"};
}

std::vector<Example> load_examples(const Json& data, const std::string& key,
                                             uint64_t seed) {
  const std::string src = data.value(key, "");
  if (src.empty()) fail("data.", key, " is required");
  std::vector<int> digits = data.value("digits", std::vector<int>{1, 2});
  if (digits.size() != 2) fail("data.digits must be [min, max]");
  const int64_t size = data.value("synthetic_size", int64_t{2000});
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
    std::vector<int> numbers = data.value("numbers", std::vector<int>{3, 4});
    if (numbers.size() != 2) fail("data.numbers must be [min, max]");
    t.min_numbers = numbers[0];
    t.max_numbers = numbers[1];
    t.max_number = data.value("max_number", 25);
    t.split = data.value("split", key == "eval" ? "eval" : "train");
    rows = countdown_problems(size, seed, t, false);
  } else {
    LoadStats st;
    rows = load_jsonl(src, DataFormat::from_json(data.value("format", Json::object())), &st);
    if (st.skipped > 0) spdlog::warn("{}: skipped {} malformed lines", src, st.skipped);
    if (st.duplicates > 0) spdlog::info("{}: dropped {} duplicate prompts", src, st.duplicates);
    // A file split by question hash: the same file can feed data.train and data.eval.
    const double frac = data.value("eval_fraction", 0.0);
    if (frac > 0) rows = split_rows(std::move(rows), frac, data.value("split", key == "eval" ? "eval" : "train"));
  }
  int64_t limit = data.value("limit", int64_t{0});
  if (limit > 0 && static_cast<int64_t>(rows.size()) > limit) rows.resize(limit);
  if (rows.empty()) fail("the dataset ", src, " is empty");
  return rows;
}

}  // namespace aha::datasets
