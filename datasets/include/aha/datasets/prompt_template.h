// Prompt templates: text in, text out (no tokenizer needed). The R1-Zero template, plain
// `{field}` templates from config, and "chat": a checkpoint's chat template, rendered by the
// tokenizer module (aha/tokenizer/chat_template.h) and handed in by the caller.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "aha/core/config.h"

namespace aha::datasets {

// DeepSeek-R1-Zero's training template (DeepSeek-R1 paper, Table 1); {prompt} is the question.
extern const char* const kR1ZeroTemplate;

// Renders one user message as a whole prompt through a checkpoint's chat template (see
// tokenizer::chat_prompt_renderer). Chat templates live in the tokenizer module, which datasets
// does not depend on, so callers hand the renderer in.
using ChatRenderer = std::function<std::string(const std::string& user_message)>;

// A text with `{field}` placeholders filled from a JSON object. `{{` and `}}` are literal braces;
// field names are [A-Za-z0-9_.-]+. Or, for "chat", the checkpoint's chat template applied to
// {prompt} as a user message. Immutable, so safe to share between threads.
class PromptTemplate {
 public:
  // Throws aha::Error on an unclosed `{`, a stray `}` or an empty/invalid field name.
  explicit PromptTemplate(std::string_view text);
  // "r1_zero" (or "r1-zero") names the built-in template; any other string is template text.
  // "chat" needs the checkpoint's template: use the overload below.
  static PromptTemplate from_config(const std::string& name_or_text);
  // As above, and "chat" renders {prompt} through load_chat(), called only for "chat" (so a
  // checkpoint without a chat template works with every other template).
  static PromptTemplate from_config(const std::string& name_or_text,
                                    const std::function<ChatRenderer()>& load_chat);
  static bool is_chat(const std::string& name_or_text) { return name_or_text == "chat"; }
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
  ChatRenderer chat_;  // set for "chat": fields_ is then {"prompt"}
};

}  // namespace aha::datasets
