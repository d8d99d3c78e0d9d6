// Reading and tokenising the SFT JSONL.
#include "sft_data.h"

#include <fstream>

#include "aha/core/config.h"
#include "aha/core/error.h"

namespace aha::distill {

namespace {

SftExample parse_row(const Json& j, const tokenizer::Tokenizer& tok, bool use_ids, bool need_topk,
                     int vocab) {
  SftExample ex;
  ex.prompt_text = j.at("prompt").get<std::string>();
  ex.prompt = tok.encode(ex.prompt_text, true);
  if (use_ids) {
    if (!j.contains("completion_ids")) fail("no completion_ids (written by aha distill sample)");
    ex.completion = j.at("completion_ids").get<std::vector<int32_t>>();
  } else {
    ex.completion = tok.encode(j.at("completion").get<std::string>(), false);
    if (tok.eos_id()) ex.completion.push_back(*tok.eos_id());
  }
  for (int32_t id : ex.completion) {
    if (id < 0 || id >= vocab) fail("completion token ", id, " outside the student's vocabulary");
  }
  if (need_topk) {
    if (!j.contains("topk")) fail("no topk (sample with store_topk > 0, or use kd.source online)");
    auto ids = j.at("topk").at("ids").get<std::vector<std::vector<int32_t>>>();
    auto lps = j.at("topk").at("logprobs").get<std::vector<std::vector<float>>>();
    if (ids.size() != ex.completion.size() || lps.size() != ids.size()) {
      fail("topk has ", ids.size(), " rows for ", ex.completion.size(), " completion tokens");
    }
    ex.topk_offsets.push_back(0);
    for (size_t r = 0; r < ids.size(); ++r) {
      if (ids[r].size() != lps[r].size()) fail("topk row ", r, ": ids and logprobs differ in size");
      for (int32_t id : ids[r]) {
        if (id < 0 || id >= vocab) fail("topk id ", id, " outside the student's vocabulary");
      }
      ex.topk_ids.insert(ex.topk_ids.end(), ids[r].begin(), ids[r].end());
      ex.topk_logprobs.insert(ex.topk_logprobs.end(), lps[r].begin(), lps[r].end());
      ex.topk_offsets.push_back(static_cast<int64_t>(ex.topk_ids.size()));
    }
  }
  return ex;
}

}  // namespace

std::vector<SftExample> load_sft(const std::string& path, const tokenizer::Tokenizer& tok,
                                 bool use_ids, bool need_topk, int vocab, int64_t limit,
                                 int max_len) {
  std::ifstream in(path);
  if (!in) fail("cannot open the SFT data ", path);
  std::vector<SftExample> out;
  std::string line;
  int64_t line_no = 0, too_long = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    SftExample ex;
    try {
      ex = parse_row(parse_json(line, "line"), tok, use_ids, need_topk, vocab);
    } catch (const std::exception& e) {
      fail(path, ":", line_no, ": ", e.what());
    }
    if (ex.completion.empty() || ex.prompt.empty()) continue;
    if (static_cast<int64_t>(ex.prompt.size() + ex.completion.size()) > max_len) {
      ++too_long;
      continue;
    }
    out.push_back(std::move(ex));
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
  }
  if (out.empty()) fail("the SFT data ", path, " has no usable rows");
  (void)too_long;
  return out;
}

}  // namespace aha::distill
