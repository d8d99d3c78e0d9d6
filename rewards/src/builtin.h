// Private: factories of the built-in rewards, registered by builtin_registry().
#pragma once

#include <memory>

#include "aha/rewards/reward.h"

namespace aha::rewards::detail {

std::unique_ptr<RewardFunction> make_math_reward(const Json& params);
std::unique_ptr<RewardFunction> make_format_reward(const Json& params);
std::unique_ptr<RewardFunction> make_tag_count_reward(const Json& params);
std::unique_ptr<RewardFunction> make_language_reward(const Json& params);
std::unique_ptr<RewardFunction> make_length_reward(const Json& params);
std::unique_ptr<RewardFunction> make_env_reward(const Json& params);
std::unique_ptr<RewardFunction> make_cosine_reward(const Json& params);
std::unique_ptr<RewardFunction> make_repetition_reward(const Json& params);
std::unique_ptr<RewardFunction> make_code_reward(const Json& params);
std::unique_ptr<RewardFunction> make_plugin_reward(const Json& params);
std::unique_ptr<RewardFunction> make_command_reward(const Json& params);
std::unique_ptr<RewardFunction> make_equations_reward(const Json& params);
std::unique_ptr<RewardFunction> make_countdown_reward(const Json& params);

// A reward with score 0 and details {"reason": reason}.
inline RewardResult unjudged(const std::string& reason) {
  RewardResult r;
  r.details["reason"] = reason;
  return r;
}

// The row lacks what the reward needs (a missing or mistyped field): score 0 with the reason,
// marked so that `aha reward` can treat the line as bad input rather than as a wrong answer.
inline RewardResult bad_row(const std::string& reason) {
  RewardResult r = unjudged(reason);
  r.details["bad_input"] = true;
  return r;
}

}  // namespace aha::rewards::detail
