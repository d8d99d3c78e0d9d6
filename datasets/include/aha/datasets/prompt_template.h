// Prompt templates: text in, text out (no tokenizer needed). The R1-Zero template, plain
// `{field}` templates from config, and HF chat templates rendered for the DeepSeek and ChatML
// (Qwen) formats without a Jinja engine (docs/tokenizer.md lists what is supported).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "aha/core/config.h"

namespace aha::datasets {

// DeepSeek-R1-Zero's training template (DeepSeek-R1 paper, Table 1); {prompt} is the question.
extern const char* const kR1ZeroTemplate;

// A text with `{field}` placeholders filled from a JSON object. `{{` and `}}` are literal braces;
// field names are [A-Za-z0-9_.-]+. Immutable, so safe to share between threads.
class PromptTemplate {
 public:
  // Throws aha::Error on an unclosed `{`, a stray `}` or an empty/invalid field name.
  explicit PromptTemplate(std::string_view text);
  // "r1_zero" (or "r1-zero") names the built-in template; any other string is template text.
  static PromptTemplate from_config(const std::string& name_or_text);
  // The template text a config name or text stands for ("r1_zero" -> kR1ZeroTemplate).
  static std::string text_of(const std::string& name_or_text);

  // Strings are inserted as is, numbers/booleans as JSON. A missing field throws aha::Error.
  std::string render(const Json& fields) const;
  // The prompt of a dataset row: the row's fields, with {prompt} standing for its "question"
  // (the loaders put the problem text there).
  std::string render_row(const Json& row) const;
  const std::vector<std::string>& fields() const { return fields_; }

 private:
  std::vector<std::string> literals_;  // literals_.size() == fields_.size() + 1
  std::vector<std::string> fields_;
};

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

enum class ChatFormat { kDeepSeek, kQwen3, kChatML };

// Renders conversations the way a tokenizer_config.json chat_template does, for the formats
// recognised in it: DeepSeek-V3 (`<｜User｜>`/`<｜Assistant｜>`), Qwen3 (ChatML with `<think>`
// blocks: reasoning kept only after the last user turn) and plain ChatML (`<|im_start|>`).
// Assistant reasoning is written inline in the content as `<think>...</think>`. Tool calls, tool
// messages and Qwen3's enable_thinking=false are not supported.
class ChatTemplate {
 public:
  ChatTemplate(ChatFormat format, std::string bos_token, std::string eos_token);
  // Detects the format from config["chat_template"]; throws aha::Error when unrecognised.
  static ChatTemplate from_tokenizer_config(const Json& config);

  // add_generation_prompt appends the assistant header so the model writes the next turn.
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const;
  ChatFormat format() const { return format_; }

 private:
  ChatFormat format_;
  std::string bos_token_, eos_token_;
};

}  // namespace aha::datasets
