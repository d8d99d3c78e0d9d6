// Text-only rewards as pure functions (the RewardFunction wrappers live in the registry):
// R1-Zero format, tag counts, language consistency, overlong and cosine length shaping,
// n-gram repetition penalty. All thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace aha::rewards {

// R1-Zero format: "<think>...</think> <answer>...</answer>" and nothing else around it.
// think_in_prompt: the prompt already opened "<think>", so the completion starts inside it.
bool r1_format_ok(std::string_view completion, bool think_in_prompt = false);

// 0.25 for each of <think>, </think>, <answer>, </answer> that occurs exactly once.
double tag_count_score(std::string_view completion);

// The text of the chain of thought: inside <think>..</think> when present, else everything
// before <answer>, else the whole completion.
std::string_view chain_of_thought(std::string_view completion);

enum class Script { kLatin, kHan, kCyrillic, kArabic, kHangul, kKana, kGreek, kDevanagari };
// "en"/"latin", "zh"/"han", "ru"/"cyrillic", "ar", "ko", "ja", "el", "hi"; throws otherwise.
Script parse_script(const std::string& name);
// Share of letters (UTF-8 code points that are letters of some script) in the target script;
// 0 when the text has no letters. Invalid UTF-8 bytes count as letters of no script; LaTeX
// command names (\frac) are skipped.
double script_share(std::string_view text, Script target);

// DAPO soft overlong punishment: 0 up to max_len - cache_len, then linear down to -1 at max_len,
// -1 beyond.
double overlong_penalty(int64_t length, int64_t max_len, int64_t cache_len);

struct CosineParams {
  double min_value_wrong = -0.5;
  double max_value_wrong = 0.0;
  double min_value_correct = 0.5;
  double max_value_correct = 1.0;
  int64_t max_len = 1000;
};
// Cosine-scaled length reward (Yeo et al. 2025): short correct answers earn most, short wrong
// answers are punished most.
double cosine_scaled(bool correct, int64_t length, const CosineParams& p);

// (1 - distinct/total n-grams of whitespace-separated words) * max_penalty (max_penalty <= 0);
// 0 for texts shorter than one n-gram.
double repetition_penalty(std::string_view text, int ngram_size, double max_penalty);

}  // namespace aha::rewards
