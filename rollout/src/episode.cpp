// Tool-call syntaxes: parsing the config, finding a call in a turn's text.
#include "aha/rollout/episode.h"

#include "aha/core/error.h"

namespace aha::rollout {

namespace {

CallFormat python_format() {
  CallFormat f;
  f.syntax = CallSyntax::kPython;
  f.open = "```python\n";
  f.close = "```";
  f.tool = "python";
  f.obs_prefix = "\n```output\n";
  f.obs_suffix = "```\n";
  return f;
}

CallFormat tool_call_format() {
  CallFormat f;
  f.syntax = CallSyntax::kToolCall;
  f.open = "<tool_call>";
  f.close = "</tool_call>";
  f.obs_prefix = "\n<tool_response>\n";
  f.obs_suffix = "</tool_response>\n";
  return f;
}

}  // namespace

CallFormat CallFormat::from_json(const Json& j, const std::string& key) {
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "python") return python_format();
    if (s == "tool_call") return tool_call_format();
    fail(key, " must be \"python\", \"tool_call\" or {\"open\", \"close\", \"tool\"} (got \"", s,
         "\")");
  }
  if (!j.is_object()) fail(key, " must be \"python\", \"tool_call\" or an object");
  CallFormat f;
  f.syntax = CallSyntax::kMarker;
  f.obs_prefix = "\n<output>\n";
  f.obs_suffix = "</output>\n";
  for (const auto& [k, v] : j.items()) {
    std::string* dst = k == "open"         ? &f.open
                       : k == "close"      ? &f.close
                       : k == "tool"       ? &f.tool
                       : k == "obs_prefix" ? &f.obs_prefix
                       : k == "obs_suffix" ? &f.obs_suffix
                                           : nullptr;
    if (dst == nullptr) fail(key, ": unknown key \"", k, "\"");
    if (!v.is_string()) fail(key, ".", k, " must be a string");
    *dst = v.get<std::string>();
  }
  if (f.open.empty() || f.close.empty()) fail(key, " needs non-empty \"open\" and \"close\"");
  if (f.tool.empty()) fail(key, " needs \"tool\": the tool its calls go to");
  return f;
}

std::optional<ToolCall> find_call(const CallFormat& f, const std::string& text) {
  const size_t a = text.find(f.open);
  if (a == std::string::npos) return std::nullopt;
  const size_t body = a + f.open.size();
  const size_t b = text.find(f.close, body);
  if (b == std::string::npos) return std::nullopt;
  ToolCall call;
  call.input = text.substr(body, b - body);
  call.tail = text.substr(b + f.close.size());
  if (f.syntax != CallSyntax::kToolCall) {
    call.tool = f.tool;
    return call;
  }
  // {"name": "...", "arguments": {...} | "..."}
  Json j = Json::parse(call.input, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    call.error = "the tool call is not a JSON object";
  } else if (!j.contains("name") || !j["name"].is_string()) {
    call.error = "the tool call has no \"name\"";
  } else {
    call.tool = j["name"].get<std::string>();
    const Json args = j.value("arguments", Json::object());
    call.input = args.is_string() ? args.get<std::string>() : args.dump();
  }
  return call;
}

const char* tool_status_name(ToolStatus s) {
  switch (s) {
    case ToolStatus::kOk: return "ok";
    case ToolStatus::kError: return "error";
    case ToolStatus::kFatal: return "fatal";
  }
  return "?";
}

}  // namespace aha::rollout
