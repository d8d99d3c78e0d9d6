// The math reward: check_math (gold extraction, then the completion's candidates in order
// until one is understood) and its RewardFunction wrapper built from JSON params.
#include <chrono>

#include "aha/core/error.h"
#include "aha/rewards/math.h"
#include "builtin.h"
#include "math_candidates.h"

namespace aha::rewards {

MathCheck check_math(std::string_view completion, std::string_view gold_raw,
                     const MathOptions& options, const ExtractOptions& extract) {
  MathCheck out;
  out.gold = extract_gold(gold_raw);
  auto letter = choice_of(out.gold);
  if (letter) out.gold = std::string(1, *letter);  // "(B) 5" is judged by its letter
  CandidateStream stream(completion, extract, letter.has_value());
  // Math-Verify's rule: the best-placed candidate that parses decides; unparsable ones pass.
  // All candidates together get twice the time of one check.
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(static_cast<int64_t>(options.time_limit_ms * 2000));
  while (auto c = stream.next()) {
    if (std::chrono::steady_clock::now() > deadline) break;
    MathVerdict v = math_equal(c->text, out.gold, options);
    if (out.extracted.source == AnswerSource::kNone || v != MathVerdict::kUnparsable) {
      out.extracted = std::move(*c);
    }
    if (v == MathVerdict::kUnparsable) continue;
    out.verdict = v;
    break;
  }
  return out;
}

namespace detail {
namespace {

constexpr AnswerSource kTargets[] = {
    AnswerSource::kAnswerTag, AnswerSource::kBoxed,      AnswerSource::kAnswerIs,
    AnswerSource::kGsm8k,     AnswerSource::kWhole,      AnswerSource::kLatex,
    AnswerSource::kLastNumber, AnswerSource::kChoice};

bool& target_flag(ExtractOptions& e, AnswerSource s) {
  switch (s) {
    case AnswerSource::kAnswerTag: return e.answer_tag;
    case AnswerSource::kBoxed: return e.boxed;
    case AnswerSource::kAnswerIs: return e.answer_is;
    case AnswerSource::kGsm8k: return e.gsm8k;
    case AnswerSource::kWhole: return e.whole;
    case AnswerSource::kLatex: return e.latex;
    case AnswerSource::kLastNumber: return e.last_number;
    default: return e.choice;
  }
}

// "extraction": a list of target names; the order of trial stays the fixed one above.
ExtractOptions read_extraction(StrictReader& r) {
  ExtractOptions e;
  Json list = r.get<Json>("extraction", Json());
  if (!list.is_null()) {
    if (!list.is_array()) fail("[math] extraction must be a list of target names");
    for (AnswerSource s : kTargets) target_flag(e, s) = false;
    for (const Json& name : list) {
      auto s = name.is_string() ? parse_answer_source(name.get<std::string>()) : std::nullopt;
      if (!s || *s == AnswerSource::kNone) {
        fail("[math] unknown extraction target ", name.dump(),
             " (answer_tag, boxed, answer_is, gsm8k, whole, latex, last_number, choice)");
      }
      target_flag(e, *s) = true;
    }
  }
  std::string think = r.get<std::string>("think", "after");
  auto mode = parse_think_mode(think);
  if (!mode) fail("[math] think must be ignore, after or require, got '", think, "'");
  e.think = *mode;
  return e;
}

MathOptions::ListOrder read_list_order(const std::string& name) {
  if (name == "auto") return MathOptions::ListOrder::kAuto;
  if (name == "any") return MathOptions::ListOrder::kAny;
  if (name == "as_written") return MathOptions::ListOrder::kAsWritten;
  fail("[math] list_order must be auto, any or as_written, got '", name, "'");
}

// Math: 1 when the extracted answer equals the row's gold answer, else 0.
class MathReward : public RewardFunction {
 public:
  explicit MathReward(const Json& params) {
    StrictReader r(params, "math");
    options_.precision = r.get<int>("precision", options_.precision);
    options_.rel_tol = r.get<double>("rel_tol", options_.rel_tol);
    options_.abs_tol = r.get<double>("abs_tol", options_.abs_tol);
    options_.time_limit_ms = r.get<double>("time_limit_ms", options_.time_limit_ms);
    options_.percent_equiv = r.get<bool>("percent_equiv", options_.percent_equiv);
    options_.strict = r.get<bool>("strict", options_.strict);
    options_.allow_set_relation = r.get<bool>("allow_set_relation", options_.allow_set_relation);
    options_.solve_equations = r.get<bool>("solve_equations", options_.solve_equations);
    options_.list_order = read_list_order(r.get<std::string>("list_order", "auto"));
    answer_key_ = r.get<std::string>("answer_key", "answer");
    extract_ = read_extraction(r);
    r.finish();
    if (!(options_.rel_tol >= 0) || !(options_.time_limit_ms > 0)) {
      fail("[math] rel_tol must be >= 0 and time_limit_ms > 0");
    }
    if (options_.precision < 0 || options_.precision > 15) {
      fail("[math] precision must be 0..15 decimals, got ", options_.precision);
    }
  }

  RewardResult score(const Sample& s) const override {
    if (s.row == nullptr || !s.row->contains(answer_key_)) {
      return bad_row("no '" + answer_key_ + "' field");
    }
    const Json& a = (*s.row)[answer_key_];
    std::string gold_raw = a.is_string() ? a.get<std::string>() : a.dump();
    MathCheck c = check_math(s.completion, gold_raw, options_, extract_);
    RewardResult r;
    r.details["gold"] = c.gold;
    r.details["source"] = answer_source_name(c.extracted.source);
    if (c.extracted.source == AnswerSource::kNone) {
      r.details["reason"] = "no answer found";
      return r;
    }
    r.details["extracted"] = c.extracted.text;
    r.details["verdict"] = verdict_name(c.verdict);
    r.score = c.verdict == MathVerdict::kEqual ? 1.0 : 0.0;
    return r;
  }

 private:
  MathOptions options_;
  ExtractOptions extract_;
  std::string answer_key_;
};

}  // namespace

std::unique_ptr<RewardFunction> make_math_reward(const Json& p) {
  return std::make_unique<MathReward>(p);
}

}  // namespace detail
}  // namespace aha::rewards
