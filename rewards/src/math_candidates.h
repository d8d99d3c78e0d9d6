// Private to the math checker: the candidate answers of a completion, produced lazily in
// priority order so that a check stops at the first candidate that decides.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aha/rewards/math.h"

namespace aha::rewards {

// Not thread-safe; one per check. Holds a view of the completion, which must outlive it.
class CandidateStream {
 public:
  CandidateStream(std::string_view completion, const ExtractOptions& options,
                  bool gold_is_choice);
  // The next candidate, nullopt when the targets are exhausted.
  std::optional<Extracted> next();

 private:
  static constexpr int kMaxCandidates = 8;
  static constexpr size_t kTail = 32768;  // anchors, LaTeX spans, numbers: the last 32 KB
  void run_stage(int stage);
  void boxed_stage(std::string_view text);
  void anchor_stage(std::string_view tail);
  static bool anchor_after_last_box(std::string_view text);
  void box_anchor(const std::string& span);
  void add(std::optional<std::string> text, AnswerSource source);

  const ExtractOptions& o_;
  bool choice_;
  std::string_view text_;
  bool done_ = false;
  bool anchor_first_ = false;  // an answer anchor follows the last \boxed{}
  int stage_ = 0;
  int n_ = 0;
  std::vector<Extracted> queue_;
  size_t pos_ = 0;
  std::vector<std::string> seen_;
};

}  // namespace aha::rewards
