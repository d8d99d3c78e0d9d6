// Datasets as JSONL rows: loading with a format mapping (GSM8K, MATH, generic fields), a
// deterministic epoch cursor that resumes exactly, and synthetic tasks with verifiable answers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/core/config.h"

namespace aha::datasets {

// One example: `row` holds the original fields plus the normalised "question" and "answer".
struct Example {
  std::string id;  // stable id: the row's "id" field, else a hash of the question
  Json row;
};

struct DataFormat {
  std::string kind = "generic";  // generic | gsm8k | math
  std::string prompt_field = "prompt";
  std::string answer_field = "answer";
  bool skip_bad_lines = true;  // false: a malformed line is an error
  static DataFormat from_json(const Json& j);
};

struct LoadStats {
  int64_t lines = 0, loaded = 0, skipped = 0, duplicates = 0;
  std::string first_skipped;  // "line N: why" of the first skipped line ("" when none)
};

// Loads a JSONL file; malformed lines are skipped and counted (or fail, per format);
// duplicate questions are dropped.
std::vector<Example> load_jsonl(const std::string& path, const DataFormat& format,
                                LoadStats* stats = nullptr);

// Deterministic shuffled epochs over n examples: the order of epoch e depends only on (seed, e).
// A split of rows that never depends on their order: a row goes to "eval" when the FNV-1a hash
// of its question (its prompt when there is none) falls in the first eval_fraction of the
// hash range. `which` is "train", "eval" or "all".
std::vector<Example> split_rows(std::vector<Example> rows, double eval_fraction,
                                const std::string& which);

class DataCursor {
 public:
  DataCursor(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  // The next k example indices (crossing epoch boundaries as needed).
  std::vector<int64_t> next(int64_t k);
  int64_t epoch() const { return epoch_; }
  Json state() const;
  void restore(const Json& state);

 private:
  void shuffle_epoch();
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_ = 0, pos_ = 0;
  std::vector<int64_t> order_;
};

// Multi-digit arithmetic (a op b with carries), answers exact integers. `digits` sets the
// difficulty. Examples carry "question" and "answer".
std::vector<Example> synthetic_arithmetic(int64_t n, uint64_t seed, int min_digits, int max_digits);

}  // namespace aha::datasets
