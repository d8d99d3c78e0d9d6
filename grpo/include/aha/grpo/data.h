// Prompt datasets for training and evaluation from a config's "data" object.
#pragma once

#include <vector>

#include "aha/core/config.h"
#include "aha/datasets/dataset.h"

namespace aha::grpo {

// data: {"train" | "eval": path.jsonl | "synthetic:arithmetic" | "synthetic:addition",
//        "format": {...}, "limit": N, "digits": [min, max], "synthetic_size": N,
//        "split": "train" | "eval" | "all"}. `key` picks "train" or "eval".
std::vector<datasets::Example> load_examples(const Json& data, const std::string& key,
                                             uint64_t seed);

// Keys load_examples understands (for strict config checking).
std::vector<std::string> data_keys();

}  // namespace aha::grpo
