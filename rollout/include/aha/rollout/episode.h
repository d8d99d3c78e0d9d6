// Multi-turn, tool-using episodes: how a tool call is recognised in the policy's text, how an
// observation is written back, and the interface a tool implements. The engine (engine.h) pauses
// a sequence at a call, runs the tool on its tool threads, appends the observation tokens to that
// sequence's cache and resumes it; the concrete tools (calculator, Python, commands) live in
// tools/.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aha/core/config.h"

namespace aha::rollout {

// How a call is written: kPython "```python\n<code>```" (tool "python"); kToolCall
// "<tool_call>{"name": .., "arguments": {..}}</tool_call>" as in Qwen/DeepSeek templates;
// kMarker any open/close pair around the input of one named tool.
enum class CallSyntax { kPython, kToolCall, kMarker };

struct CallFormat {
  CallSyntax syntax = CallSyntax::kPython;
  std::string open, close;   // the call's delimiters
  std::string tool;          // kPython, kMarker: the tool every call goes to
  // The observation appended after a call: prefix + output + suffix.
  std::string obs_prefix, obs_suffix;
  // One of the named syntaxes with its default delimiters: "python" | "tool_call"; or an
  // object {"open", "close", "tool", "obs_prefix", "obs_suffix"} (a custom marker). Throws
  // aha::Error naming `key` on a bad value.
  static CallFormat from_json(const Json& j, const std::string& key);
};

// A call found in the text of one assistant turn.
struct ToolCall {
  std::string tool;   // the tool's name
  std::string input;  // code, expression, or the "arguments" JSON text (kToolCall)
  std::string error;  // non-empty: the call could not be parsed (the model sees this)
  // What the turn's text holds after the close marker: a token may end past it (a `>\n`
  // token closing "</calc>"). The observation does not repeat it (see EpisodeOptions).
  std::string tail;
};

// The first complete call in `turn_text` (the text of the current assistant turn), if any.
std::optional<ToolCall> find_call(const CallFormat& f, const std::string& turn_text);

enum class ToolStatus {
  kOk,     // output for the model
  kError,  // the call failed in a way the model should see (a bad expression, a traceback)
  kFatal,  // the tool is broken, hung or hostile: the episode ends (finish "tool_error")
};

struct ToolResult {
  ToolStatus status = ToolStatus::kOk;
  std::string output;  // what the model sees (kOk, kError); kFatal: why the episode ended
  // Environments: the step's reward (NaN: none; the tool turn records it, and with
  // grpo.advantage: process it is a step reward) and whether the episode is over (done: it ends
  // with finish_reason "stop" and the observation is logged, not appended).
  double reward = std::numeric_limits<double>::quiet_NaN();
  bool done = false;
};

const char* tool_status_name(ToolStatus s);

// One episode's use of one tool: calls arrive one at a time, in order, from one thread at a
// time (the episode is paused while its call runs), so a session may keep state across turns.
class ToolSession {
 public:
  virtual ~ToolSession() = default;
  virtual ToolResult call(const std::string& input) = 0;
  // Environments: the episode's first observation, before the policy's first token (run once,
  // before any call). Tools keep this default, which is never called.
  virtual ToolResult reset() { return {}; }
};

// A tool. Thread-safe: open() and the sessions it returns may run concurrently.
class Tool {
 public:
  virtual ~Tool() = default;
  virtual std::string name() const = 0;
  // A fresh session for one episode (prompt_text: the episode's prompt, for environments).
  virtual std::unique_ptr<ToolSession> open(const std::string& prompt_text) const = 0;
  // An environment (reset/step): every episode starts with its reset() observation, and its
  // step results may carry rewards and end the episode. At most one per run.
  virtual bool environment() const { return false; }
};

struct EpisodeOptions {
  std::vector<const Tool*> tools;  // empty: single-turn rollouts, as before
  CallFormat format;
  int max_turns = 4;               // tool calls per episode; one more ends it ("max_turns")
  int max_turn_tokens = 0;         // policy tokens per assistant turn (0: only the total)
  int64_t max_output_bytes = 4096; // a longer tool output ends the episode (tool_error)
  int tool_threads = 2;            // threads that run tool calls, off the decode loop
  // The observation appended is obs_prefix + output (+ "\n" if it lacks one) + obs_suffix,
  // less what the call's last token already wrote of obs_prefix (ToolCall::tail), so that the
  // episode's text reads as if written in one piece.
  // Text -> ids of an observation (no BOS); required when tools are given.
  std::function<std::vector<int32_t>(const std::string&)> tokenize;
  bool enabled() const { return !tools.empty(); }
};

}  // namespace aha::rollout
