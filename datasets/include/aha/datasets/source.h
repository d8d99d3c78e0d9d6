// Prompt datasets for training and evaluation from a config's "data" object.
#pragma once

#include <vector>

#include "aha/core/config.h"
#include "aha/datasets/dataset.h"

namespace aha::datasets {

// data: {"train" | "eval": path.jsonl | "synthetic:addition" | "synthetic:countdown" |
//        "synthetic:linear" | "synthetic:arithmetic", "format": {...}, "limit": N,
//        "digits": [min, max], "numbers": [min, max], "max_number": N, "synthetic_size": N,
//        "split": "train" | "eval" | "all", "eval_fraction": f}. `key` picks "train" or "eval".
std::vector<Example> load_examples(const Json& data, const std::string& key, uint64_t seed);

// Keys load_examples understands (for strict config checking).
std::vector<std::string> data_keys();

}  // namespace aha::datasets
