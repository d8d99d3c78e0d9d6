// A checkpoint's chat template: the Jinja `chat_template` of tokenizer_config.json (a string, or
// the list of named templates), rendered with the context HF transformers' apply_chat_template
// gives it (messages, tools, add_generation_prompt, the special tokens).
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "aha/core/config.h"
#include "aha/tokenizer/jinja.h"

namespace aha::tokenizer {

// Immutable after construction: render() may be called from many threads.
class ChatTemplate {
 public:
  // `config` is a parsed tokenizer_config.json. Throws aha::Error when it has no chat_template
  // or a template does not parse.
  static ChatTemplate from_config(const nlohmann::ordered_json& config);
  // Reads DIR/tokenizer_config.json (and DIR/chat_template.jinja, where newer transformers
  // versions save the template).
  static ChatTemplate load(const std::string& checkpoint_dir);

  // `messages`: [{"role": .., "content": .., "tool_calls": [..]}, ..] as HF takes them; `tools`:
  // a list of JSON-schema tool definitions, or null. Dict keys keep their order (tojson prints
  // tool schemas in insertion order, as HF does).
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& tools = nullptr,
                     const nlohmann::ordered_json& extra_context = nullptr) const;
  // One user message with the generation prompt: what `data.template: chat` makes of a prompt.
  std::string render_user_prompt(const std::string& text, const std::string& system = "",
                                 const nlohmann::ordered_json& extra_context = nullptr) const;

  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  struct Named {
    std::string name;
    jinja::Template tmpl;
  };
  const jinja::Template& pick(bool has_tools) const;

  std::vector<Named> templates_;
  nlohmann::ordered_json special_tokens_ = nlohmann::ordered_json::object();
  std::string bos_token_, eos_token_;
};

class Tokenizer;

// What `data.template: chat` renders a prompt with: one user message plus the generation prompt,
// through checkpoint_dir's chat template. Prompts are encoded with add_special=true, so the
// template's leading bos_token is dropped where `tok` adds one itself: the prompt ids are then
// exactly apply_chat_template's. `tok` may be null (no tokenizer.json): the text stays as is.
// `data` (optional, a run config's data object): "system_prompt" (a system message before the
// user's) and "chat_template_kwargs" (extra template variables, e.g. {"enable_thinking": false}
// for Qwen3), as HF's apply_chat_template takes them. A bad value is an error naming the key.
std::function<std::string(const std::string&)> chat_prompt_renderer(
    const std::string& checkpoint_dir, const Tokenizer* tok, const Json& data = Json());

}  // namespace aha::tokenizer
