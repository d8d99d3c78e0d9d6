// Tool-using episodes: calls dispatched to tool threads, observations fed back through the
// decode path, environments' reset and step rewards.
#include <string>
#include <vector>

#include "aha/core/error.h"
#include "generate_run.h"

namespace aha::rollout::detail {

void GenerateRun::push_assistant_turn(Live& s) {
  if (s.out.n() <= s.turn_begin) return;
  Turn t;
  t.role = "assistant";
  t.begin = s.turn_begin;
  t.end = s.out.n();
  t.text = turn_text(s);
  s.out.turns.push_back(std::move(t));
  s.turn_begin = s.out.n();
}

void GenerateRun::start_episode(Live& s, const std::vector<float>& prompt_logits) {
  s.first_logits = prompt_logits;
  s.resetting = true;
  s.waiting = true;
  s.out.turns.push_back({"tool", 0, 0, "", env_->name(), "", 0.0});
  ToolCall reset;
  reset.tool = env_->name();
  runner_->submit(&s, env_, std::move(reset), true);
}

void GenerateRun::dispatch(Live& s) {
  ToolCall call = std::move(*s.call);
  s.call.reset();
  s.call_tail = call.tail;
  push_assistant_turn(s);
  ++s.calls;
  s.waiting = true;
  s.out.turns.push_back({"tool", s.out.n(), s.out.n(), "", call.tool, "", 0.0});
  auto it = tools_.find(call.tool);
  if (!call.error.empty() || it == tools_.end()) {
    const std::string why = !call.error.empty() ? call.error : "unknown tool \"" + call.tool + "\"";
    observe(s, {ToolStatus::kError, "error: " + why}, 0.0);
    return;
  }
  runner_->submit(&s, it->second, std::move(call));
}

void GenerateRun::dispatch_calls() {
  for (auto& s : live_) {
    if (s->call) dispatch(*s);
  }
}

void GenerateRun::collect(bool block) {
  for (ToolRunner::Done& d : runner_->take(block)) {
    observe(*d.seq, std::move(d.result), d.seconds);
  }
}

void GenerateRun::observe(Live& s, ToolResult r, double seconds) {
  const EpisodeOptions& ep = opts_.episodes;
  s.waiting = false;
  Turn& t = s.out.turns.back();  // pushed by dispatch
  const std::string& tool = t.tool;
  t.seconds = seconds;
  if (r.status != ToolStatus::kFatal &&
      static_cast<int64_t>(r.output.size()) > ep.max_output_bytes) {
    r = {ToolStatus::kFatal, "tool output of " + std::to_string(r.output.size()) +
                                 " bytes exceeds rollout.max_output_bytes (" +
                                 std::to_string(ep.max_output_bytes) + ")"};
  }
  if (r.status == ToolStatus::kFatal) {
    t.status = "fatal: " + r.output;
    s.out.error = tool + ": " + r.output;
    finish(s, "tool_error");
    return;
  }
  t.status = tool_status_name(r.status);
  t.reward = r.reward;
  if (r.done) {  // the environment ended the episode: its last words are logged only
    t.text = r.output;
    finish(s, "stop");
    return;
  }
  if (s.resetting) {
    reset_observed(s, r.output);
    return;
  }
  std::string prefix = ep.format.obs_prefix;
  if (prefix.compare(0, s.call_tail.size(), s.call_tail) == 0) prefix.erase(0, s.call_tail.size());
  std::string text = prefix + r.output;
  if (!r.output.empty() && r.output.back() != '\n') text += '\n';
  text += ep.format.obs_suffix;
  const std::vector<int32_t> ids = ep.tokenize(text);
  // The observation and at least one more policy token must fit the episode's budget.
  const int64_t after = s.out.n() + static_cast<int64_t>(ids.size());
  if (after + 1 > s.params->max_new_tokens ||
      s.cache.len + 1 + static_cast<int64_t>(ids.size()) + 1 >= max_pos_) {
    finish(s, "length");
    return;
  }
  append_observation(s, ids);
  t.end = s.out.n();
  t.text = text;
  s.turn_begin = s.out.n();
}

void GenerateRun::reset_observed(Live& s, const std::string& text) {
  s.resetting = false;
  Turn& t = s.out.turns.back();
  t.text = text;
  const std::vector<int32_t> ids =
      text.empty() ? std::vector<int32_t>{} : opts_.episodes.tokenize(text);
  if (static_cast<int64_t>(ids.size()) + 1 > s.params->max_new_tokens ||
      s.cache.len + static_cast<int64_t>(ids.size()) + 1 >= max_pos_) {
    finish(s, "length");
    return;
  }
  if (ids.empty()) {
    advance(s, s.first_logits.data(), scratch_);
  } else {
    append_observation(s, ids);
    s.next = s.feed.front();  // nothing sampled yet: the observation's first token goes next
    s.feed.pop_front();
  }
  t.end = s.out.n();
  s.turn_begin = s.out.n();
  std::vector<float>().swap(s.first_logits);
}

void GenerateRun::append_observation(Live& s, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    s.out.completion_ids.push_back(id);
    s.out.sampled_logprobs.push_back(kNoLogprob);
    s.out.sampling_dist_logprobs.push_back(kNoLogprob);
    s.out.loss_mask.push_back(0);
    if (opts_.record_kept_ids) s.out.kept_ids.emplace_back();
    s.history.push_back(id);
    s.feed.push_back(id);
  }
}

}  // namespace aha::rollout::detail
