// RewardFunction wrappers of the text rewards, built from JSON params (math: math_reward.cpp).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <cmath>
#include <pcre2.h>

#include "aha/rewards/math.h"
#include "aha/rewards/text_rewards.h"
#include "builtin.h"

namespace aha::rewards::detail {
namespace {

// Format: the R1-Zero layout, or a user PCRE2 pattern (DOTALL) that must match.
class FormatReward : public RewardFunction {
 public:
  explicit FormatReward(const Json& params) {
    StrictReader r(params, "format");
    think_in_prompt_ = r.get<bool>("think_in_prompt", false);
    std::string pattern = r.get<std::string>("pattern", "");
    r.finish();
    if (pattern.empty()) return;
    int code = 0;
    PCRE2_SIZE offset = 0;
    regex_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                           PCRE2_DOTALL | PCRE2_UTF, &code, &offset, nullptr);
    if (regex_ == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(code, msg, sizeof(msg));
      fail("[format] bad pattern at offset ", offset, ": ", reinterpret_cast<char*>(msg));
    }
  }
  ~FormatReward() override { pcre2_code_free(regex_); }
  FormatReward(const FormatReward&) = delete;
  FormatReward& operator=(const FormatReward&) = delete;

  RewardResult score(const Sample& s) const override {
    RewardResult r;
    if (regex_ == nullptr) {
      r.score = r1_format_ok(s.completion, think_in_prompt_) ? 1.0 : 0.0;
      return r;
    }
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_, nullptr);
    int rc = pcre2_match(regex_, reinterpret_cast<PCRE2_SPTR>(s.completion.data()),
                         s.completion.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    r.score = rc >= 0 ? 1.0 : 0.0;
    if (rc < -1) r.details["reason"] = "pattern match error " + std::to_string(rc);
    return r;
  }

 private:
  bool think_in_prompt_ = false;
  pcre2_code* regex_ = nullptr;
};

class TagCountReward : public RewardFunction {
 public:
  explicit TagCountReward(const Json& params) { StrictReader(params, "tag_count").finish(); }
  RewardResult score(const Sample& s) const override {
    return RewardResult{tag_count_score(s.completion), Json::object()};
  }
};

class LanguageReward : public RewardFunction {
 public:
  explicit LanguageReward(const Json& params) {
    StrictReader r(params, "language");
    script_ = parse_script(r.get<std::string>("language", "en"));
    whole_ = r.get<std::string>("scope", "cot") == "completion";
    r.finish();
  }
  RewardResult score(const Sample& s) const override {
    std::string_view text = whole_ ? s.completion : chain_of_thought(s.completion);
    return RewardResult{script_share(text, script_), Json::object()};
  }

 private:
  Script script_;
  bool whole_ = false;
};

// Length of a completion in the configured unit: tokens when the trainer gave them.
int64_t completion_length(const Sample& s, const std::string& unit) {
  if (unit == "tokens" || (unit == "auto" && s.n_completion_tokens >= 0)) {
    return s.n_completion_tokens;
  }
  if (unit == "words") {
    int64_t n = 0;
    bool in = false;
    for (char c : s.completion) {
      bool space = c == ' ' || c == '\n' || c == '\t';
      n += !space && !in;
      in = !space;
    }
    return n;
  }
  return static_cast<int64_t>(s.completion.size());
}

std::string read_unit(StrictReader& r) {
  auto unit = r.get<std::string>("unit", "auto");
  if (unit != "auto" && unit != "tokens" && unit != "chars" && unit != "words") {
    fail("[", r.where(), "] unit must be auto, tokens, chars or words, got '", unit, "'");
  }
  return unit;
}

// The sum of an environment's step rewards over the episode (0 without any), each listed.
class EnvReward : public RewardFunction {
 public:
  explicit EnvReward(const Json& params) { StrictReader(params, "env").finish(); }
  RewardResult score(const Sample& s) const override {
    RewardResult r{0.0, Json::object()};
    Json steps = Json::array();
    if (s.turns != nullptr) {
      for (const Turn& t : *s.turns) {
        if (!std::isfinite(t.reward)) continue;
        r.score += t.reward;
        steps.push_back(t.reward);
      }
    }
    r.details["step_rewards"] = std::move(steps);
    return r;
  }
};

class LengthReward : public RewardFunction {
 public:
  explicit LengthReward(const Json& params) {
    StrictReader r(params, "length");
    max_len_ = r.get<int64_t>("max_len", 4096);
    cache_len_ = r.get<int64_t>("cache_len", 512);
    unit_ = read_unit(r);
    r.finish();
    if (max_len_ <= 0 || cache_len_ < 0 || cache_len_ > max_len_) {
      fail("[length] need 0 <= cache_len <= max_len, max_len > 0");
    }
  }
  RewardResult score(const Sample& s) const override {
    int64_t n = completion_length(s, unit_);
    if (n < 0) return unjudged("unit tokens but n_completion_tokens unknown");
    RewardResult r{overlong_penalty(n, max_len_, cache_len_), Json::object()};
    r.details["length"] = n;
    return r;
  }

 private:
  int64_t max_len_, cache_len_;
  std::string unit_;
};

class CosineReward : public RewardFunction {
 public:
  explicit CosineReward(const Json& params) {
    StrictReader r(params, "cosine");
    p_.min_value_wrong = r.get<double>("min_value_wrong", p_.min_value_wrong);
    p_.max_value_wrong = r.get<double>("max_value_wrong", p_.max_value_wrong);
    p_.min_value_correct = r.get<double>("min_value_correct", p_.min_value_correct);
    p_.max_value_correct = r.get<double>("max_value_correct", p_.max_value_correct);
    p_.max_len = r.get<int64_t>("max_len", p_.max_len);
    unit_ = read_unit(r);
    math_ = make_math_reward(r.child("math"));
    r.finish();
    if (p_.max_len <= 0) fail("[cosine] max_len must be > 0");
  }
  RewardResult score(const Sample& s) const override {
    RewardResult m = math_->score(s);
    int64_t n = completion_length(s, unit_);
    if (n < 0) return unjudged("unit tokens but n_completion_tokens unknown");
    RewardResult r{cosine_scaled(m.score > 0.5, n, p_), Json::object()};
    r.details["correct"] = m.score > 0.5;
    r.details["length"] = n;
    return r;
  }

 private:
  CosineParams p_;
  std::string unit_;
  std::unique_ptr<RewardFunction> math_;
};

class RepetitionReward : public RewardFunction {
 public:
  explicit RepetitionReward(const Json& params) {
    StrictReader r(params, "repetition");
    ngram_ = r.get<int>("ngram_size", 3);
    max_penalty_ = r.get<double>("max_penalty", -1.0);
    r.finish();
    if (ngram_ <= 0 || max_penalty_ > 0) fail("[repetition] need ngram_size > 0, max_penalty <= 0");
  }
  RewardResult score(const Sample& s) const override {
    return RewardResult{repetition_penalty(s.completion, ngram_, max_penalty_), Json::object()};
  }

 private:
  int ngram_;
  double max_penalty_;
};

}  // namespace

std::unique_ptr<RewardFunction> make_format_reward(const Json& p) {
  return std::make_unique<FormatReward>(p);
}
std::unique_ptr<RewardFunction> make_tag_count_reward(const Json& p) {
  return std::make_unique<TagCountReward>(p);
}
std::unique_ptr<RewardFunction> make_language_reward(const Json& p) {
  return std::make_unique<LanguageReward>(p);
}
std::unique_ptr<RewardFunction> make_length_reward(const Json& p) {
  return std::make_unique<LengthReward>(p);
}

std::unique_ptr<RewardFunction> make_env_reward(const Json& p) {
  return std::make_unique<EnvReward>(p);
}
std::unique_ptr<RewardFunction> make_cosine_reward(const Json& p) {
  return std::make_unique<CosineReward>(p);
}
std::unique_ptr<RewardFunction> make_repetition_reward(const Json& p) {
  return std::make_unique<RepetitionReward>(p);
}

}  // namespace aha::rewards::detail
