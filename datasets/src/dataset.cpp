// JSONL loading, the epoch cursor and synthetic arithmetic.
#include "gen_budget.h"
#include "aha/datasets/dataset.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <numeric>
#include <unordered_set>

#include "aha/core/error.h"
#include "aha/core/rng.h"

namespace aha::datasets {

DataFormat DataFormat::from_json(const Json& j) {
  StrictReader r(j, "data.format");
  DataFormat f;
  f.kind = r.get<std::string>("kind", f.kind);
  f.prompt_field = r.get<std::string>("prompt_field", f.kind == "gsm8k" || f.kind == "apps"
                                                          ? "question"
                                                      : f.kind == "math" ? "problem"
                                                                         : f.prompt_field);
  f.answer_field = r.get<std::string>("answer_field", f.kind == "math"        ? "solution"
                                                      : f.kind == "apps"      ? "input_output"
                                                      : f.kind == "humaneval" ? "test"
                                                                              : f.answer_field);
  f.skip_bad_lines = r.get<bool>("skip_bad_lines", f.skip_bad_lines);
  r.finish();
  if (f.kind != "generic" && f.kind != "gsm8k" && f.kind != "math" && f.kind != "apps" &&
      f.kind != "humaneval") {
    fail("data.format.kind must be generic, gsm8k, math, apps or humaneval (got '", f.kind, "')");
  }
  return f;
}

namespace {

// The content of the last \boxed{...} (balanced braces), or "" when none.
std::string last_boxed(const std::string& s) {
  size_t at = s.rfind("\\boxed{");
  if (at == std::string::npos) return "";
  size_t i = at + 7;
  int depth = 1;
  size_t start = i;
  for (; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return s.substr(start, i - start);
  }
  return "";
}

std::string to_text(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// The answer of a row in the dataset's format: GSM8K's text after "####", MATH's last
// \boxed{}, the tests of the code datasets (put in row["tests"]; the answer is then empty).
// Sets *why when the row does not fit the format.
std::string answer_of(const DataFormat& f, Json& row, std::string* why) {
  std::string answer = to_text(row[f.answer_field]);
  if (f.kind == "gsm8k") {
    size_t hash = answer.rfind("####");
    if (hash == std::string::npos) {
      *why = "GSM8K answer without '####'";
      return "";
    }
    answer = answer.substr(hash + 4);
    answer.erase(0, answer.find_first_not_of(" \t"));
  } else if (f.kind == "math") {
    answer = last_boxed(answer);
    if (answer.empty()) *why = "MATH solution without \\boxed{}";
  } else if (f.kind == "apps") {
    // APPS / CodeContests: input_output is a JSON string (or object) of stdin/stdout tests,
    // with fn_name for call-based problems; the code reward reads it as row["tests"].
    const Json& io = row[f.answer_field];
    Json tests = io.is_string() ? try_parse_json(io.get<std::string>()).value_or(Json()) : io;
    if (tests.is_null()) {
      *why = "input_output is not valid JSON";
    } else if (!tests.is_object() || !tests.contains("inputs") || !tests.contains("outputs") ||
               !tests["inputs"].is_array() || !tests["outputs"].is_array() ||
               tests["inputs"].size() != tests["outputs"].size() || tests["inputs"].empty()) {
      *why = "input_output needs non-empty inputs and outputs of equal length";
    } else {
      row["tests"] = std::move(tests);
    }
    answer.clear();
  } else if (f.kind == "humaneval") {
    if (!row.contains("entry_point") || !row["entry_point"].is_string() ||
        !row[f.answer_field].is_string()) {
      *why = "HumanEval rows need string 'test' and 'entry_point'";
    }
    answer.clear();
  }
  return answer;
}

}  // namespace

std::vector<Example> load_jsonl(const std::string& path, const DataFormat& f, LoadStats* stats) {
  std::ifstream in(path);
  if (!in) fail("cannot open dataset ", path);
  LoadStats st;
  std::vector<Example> out;
  std::unordered_set<std::string> seen;
  std::string line;
  auto bad = [&](const std::string& why) {
    if (!f.skip_bad_lines) fail(path, ":", st.lines, ": ", why);
    if (st.skipped++ == 0) st.first_skipped = "line " + std::to_string(st.lines) + ": " + why;
  };
  while (std::getline(in, line)) {
    ++st.lines;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string why;
    std::optional<Json> parsed = try_parse_json(line, &why);
    if (!parsed) {
      bad(why);
      continue;
    }
    Json row = std::move(*parsed);
    if (!row.is_object()) {
      bad("not a JSON object");
      continue;
    }
    if (!row.contains(f.prompt_field) || !row.contains(f.answer_field)) {
      std::string keys;
      for (const auto& [k, v] : row.items()) keys += (keys.empty() ? "" : ", ") + k;
      if (keys.size() > 120) keys = keys.substr(0, 120) + "...";
      bad("no '" + (row.contains(f.prompt_field) ? f.answer_field : f.prompt_field) +
          "' field (the line has: " + keys + "; data.format.prompt_field / answer_field name "
          "other fields)");
      continue;
    }
    std::string question = to_text(row[f.prompt_field]);
    std::string why_not;
    std::string answer = answer_of(f, row, &why_not);
    if (!why_not.empty()) {
      bad(why_not);
      continue;
    }
    if (!seen.insert(question).second) {
      ++st.duplicates;
      continue;
    }
    row["question"] = question;
    row["answer"] = answer;
    Example e;
    e.id = row.contains("id") ? to_text(row["id"])
                              : "h" + std::to_string(std::hash<std::string>{}(question) % 1000000007);
    e.row = std::move(row);
    out.push_back(std::move(e));
    ++st.loaded;
  }
  if (stats != nullptr) *stats = st;
  return out;
}

void DataCursor::shuffle_epoch() {
  order_.resize(n_);
  std::iota(order_.begin(), order_.end(), 0);
  Rng rng(seed_, static_cast<uint64_t>(epoch_));
  for (int64_t i = n_ - 1; i > 0; --i) std::swap(order_[i], order_[rng.below(i + 1)]);
}

std::vector<Example> split_rows(std::vector<Example> rows, double eval_fraction,
                                const std::string& which) {
  if (!(eval_fraction >= 0 && eval_fraction < 1)) fail("eval_fraction must be in [0, 1)");
  if (which != "train" && which != "eval" && which != "all") fail("split must be train, eval or all");
  if (which == "all" || eval_fraction == 0) {
    if (which == "eval") fail("an eval split needs eval_fraction > 0");
    return rows;
  }
  std::vector<Example> out;
  for (Example& e : rows) {
    const std::string key = e.row.value("question", e.row.value("prompt", e.id));
    uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
    const bool eval = double(h % 1000000) < eval_fraction * 1e6;
    if (eval == (which == "eval")) out.push_back(std::move(e));
  }
  return out;
}

std::vector<int64_t> DataCursor::next(int64_t k) {
  AHA_CHECK(n_ > 0, "empty dataset");
  if (order_.empty()) shuffle_epoch();
  std::vector<int64_t> out;
  while (static_cast<int64_t>(out.size()) < k) {
    if (pos_ == n_) {
      ++epoch_;
      pos_ = 0;
      shuffle_epoch();
    }
    out.push_back(order_[pos_++]);
  }
  return out;
}

Json DataCursor::state() const { return Json{{"epoch", epoch_}, {"pos", pos_}, {"n", n_}}; }

void DataCursor::restore(const Json& s) {
  if (s.value("n", int64_t{-1}) != n_) fail("data cursor was saved for a dataset of another size");
  epoch_ = s.at("epoch").get<int64_t>();
  pos_ = s.at("pos").get<int64_t>();
  shuffle_epoch();
}

std::vector<Example> synthetic_arithmetic(int64_t n, uint64_t seed, int min_digits,
                                          int max_digits) {
  AHA_CHECK(min_digits >= 1 && max_digits >= min_digits && max_digits <= 9, "digits");
  Rng rng(seed, 77);
  std::vector<Example> out;
  std::unordered_set<std::string> seen;
  auto number = [&](int digits) {
    int64_t lo = 1;
    for (int i = 1; i < digits; ++i) lo *= 10;
    int64_t hi = lo * 10 - 1;
    if (digits == 1) lo = 0;
    return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
  };
  for (GenBudget budget(n, 50); budget.more(static_cast<int64_t>(out.size()));) {
    int da = min_digits + static_cast<int>(rng.below(max_digits - min_digits + 1));
    int db = min_digits + static_cast<int>(rng.below(max_digits - min_digits + 1));
    int64_t a = number(da), b = number(db);
    const char op = "+-"[rng.below(2)];
    int64_t ans = op == '+' ? a + b : a - b;
    std::string q = std::to_string(a) + " " + op + " " + std::to_string(b);
    if (!seen.insert(q).second) continue;
    Example e;
    e.id = "arith-" + std::to_string(out.size());
    e.row = Json{{"question", "What is " + q + "?"}, {"answer", std::to_string(ans)},
                 {"prompt", "What is " + q + "?"}};
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace aha::datasets
