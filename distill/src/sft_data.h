// The SFT JSONL of `aha distill sample` tokenised for training (private to distill).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/distill/kd_loss.h"
#include "aha/tokenizer/tokenizer.h"

namespace aha::distill {

struct SftExample {
  std::string prompt_text;
  std::vector<int32_t> prompt, completion;  // token ids; completion ends with the stop token
  // Teacher top-k per completion token (when stored): CSR like SparseTargets.
  std::vector<int64_t> topk_offsets;
  std::vector<int32_t> topk_ids;
  std::vector<float> topk_logprobs;
};

// Reads an SFT JSONL. use_ids: take the completion's teacher token ids ("completion_ids", needed
// to align stored top-k), else re-tokenise the completion text with `tok` and append EOS.
// need_topk: every row must carry "topk". Malformed lines are errors naming the line.
std::vector<SftExample> load_sft(const std::string& path, const tokenizer::Tokenizer& tok,
                                 bool use_ids, bool need_topk, int vocab, int64_t limit,
                                 int max_len);

}  // namespace aha::distill
