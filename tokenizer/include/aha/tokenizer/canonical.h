// Engram's token-id compression (DeepSeek's Engram demo, CompressedTokenizer): token ids whose
// decoded text normalises to the same string share one canonical id, so the n-gram hash sees
// "The", " the" and "THE" alike. The table is stored beside the checkpoint
// (engram_compression.json, policy/model_config.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "aha/tokenizer/tokenizer.h"

namespace aha::tokenizer {

// NFKC, NFD, marks (General_Category M) removed, lowercase, runs of [ \t\r\n] collapsed to one
// space, leading/trailing white space stripped unless the whole text is that one space.
// Needs ICU for non-ASCII text (throws aha::Error in a build without it).
std::string engram_normalize(std::string_view text);

// Canonical id of each of the first n_ids ids (n_ids >= the tokenizer's vocabulary; ids beyond
// it get ids of their own), numbered in order of first appearance. A token whose text is not
// valid UTF-8 keys on its tokenizer.json string; one whose normalised text is empty on its text.
std::vector<int32_t> engram_canonical_ids(const Tokenizer& tok, int n_ids);

}  // namespace aha::tokenizer
