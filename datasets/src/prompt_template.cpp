// Prompt templates: `{field}` substitution, the R1-Zero template and the DeepSeek / Qwen3 /
// ChatML chat formats.
#include "aha/datasets/prompt_template.h"

#include <algorithm>

namespace aha::datasets {

const char* const kR1ZeroTemplate =
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process "
    "here </think> <answer> answer here </answer>. User: {prompt}. Assistant:";

namespace {
bool is_field_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}
}  // namespace

PromptTemplate::PromptTemplate(std::string_view text) {
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal += c;
      ++i;
    } else if (c == '}') {
      fail("[prompt_template] stray '}' at offset ", i, " (write '}}' for a literal brace)");
    } else if (c == '{') {
      size_t close = text.find('}', i + 1);
      if (close == std::string_view::npos)
        fail("[prompt_template] unclosed '{' at offset ", i, " (write '{{' for a literal brace)");
      std::string name(text.substr(i + 1, close - i - 1));
      if (name.empty() || !std::all_of(name.begin(), name.end(), is_field_char))
        fail("[prompt_template] bad field name '{", name, "}' at offset ", i);
      literals_.push_back(std::move(literal));
      literal.clear();
      fields_.push_back(std::move(name));
      i = close;
    } else {
      literal += c;
    }
  }
  literals_.push_back(std::move(literal));
}

std::string PromptTemplate::text_of(const std::string& name_or_text) {
  if (name_or_text == "r1_zero" || name_or_text == "r1-zero") return kR1ZeroTemplate;
  return name_or_text;
}

PromptTemplate PromptTemplate::from_config(const std::string& name_or_text) {
  if (name_or_text == "r1_zero" || name_or_text == "r1-zero") return PromptTemplate(kR1ZeroTemplate);
  PromptTemplate t(name_or_text);
  // A template without a field renders every example into the same prompt.
  if (t.fields().empty()) {
    fail("data.template '", name_or_text.substr(0, 80), "' has no {prompt} (or other {field}): ",
         "every example would get the same prompt");
  }
  return t;
}

std::string PromptTemplate::render_row(const Json& row) const {
  Json fields = row;
  fields["prompt"] = row.value("question", "");
  return render(fields);
}

std::string PromptTemplate::render(const Json& values) const {
  std::string out = literals_[0];
  for (size_t k = 0; k < fields_.size(); ++k) {
    auto it = values.is_object() ? values.find(fields_[k]) : values.end();
    if (!values.is_object() || it == values.end())
      fail("[prompt_template] field '", fields_[k], "' is missing from ",
           values.dump().substr(0, 200));
    out += it->is_string() ? it->get_ref<const std::string&>() : it->dump();
    out += literals_[k + 1];
  }
  return out;
}

ChatTemplate::ChatTemplate(ChatFormat format, std::string bos_token, std::string eos_token)
    : format_(format), bos_token_(std::move(bos_token)), eos_token_(std::move(eos_token)) {}

namespace {
std::string config_token(const Json& config, const char* key) {
  if (!config.contains(key)) return "";
  const Json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}
}  // namespace

ChatTemplate ChatTemplate::from_tokenizer_config(const Json& config) {
  if (!config.is_object() || !config.contains("chat_template") ||
      !config["chat_template"].is_string())
    fail("[chat_template] tokenizer_config has no chat_template string");
  const std::string& t = config["chat_template"].get_ref<const std::string&>();
  std::string bos = config_token(config, "bos_token"), eos = config_token(config, "eos_token");
  if (t.find("<｜User｜>") != std::string::npos && t.find("<｜Assistant｜>") != std::string::npos)
    return ChatTemplate(ChatFormat::kDeepSeek, bos, eos);
  if (t.find("<|im_start|>") != std::string::npos)
    return ChatTemplate(t.find("reasoning_content") != std::string::npos ? ChatFormat::kQwen3
                                                                          : ChatFormat::kChatML,
                        bos, eos);
  fail("[chat_template] unrecognised chat_template (supported: DeepSeek <｜User｜>/<｜Assistant｜>, "
       "ChatML <|im_start|>); use a plain {field} template instead");
}

namespace {

std::string_view strip_newlines(std::string_view s, bool left, bool right) {
  while (left && !s.empty() && s.front() == '\n') s.remove_prefix(1);
  while (right && !s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

// Qwen3: an assistant turn after the last user query shows its reasoning as
// "<think>\n{reasoning}\n</think>\n\n{answer}"; earlier turns keep only the answer.
std::string render_qwen3(std::span<const ChatMessage> messages) {
  std::string out;
  if (!messages.empty() && messages[0].role == "system")
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  int last_query = int(messages.size()) - 1;
  for (int i = int(messages.size()) - 1; i >= 0; --i) {
    const std::string& c = messages[i].content;
    if (messages[i].role == "user" &&
        !(c.starts_with("<tool_response>") && c.ends_with("</tool_response>"))) {
      last_query = i;
      break;
    }
  }
  for (int i = 0; i < int(messages.size()); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i > 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      std::string_view content = m.content, reasoning;
      size_t first_end = content.find("</think>");
      if (first_end != std::string_view::npos) {
        std::string_view before = strip_newlines(content.substr(0, first_end), false, true);
        size_t open = before.rfind("<think>");
        reasoning = strip_newlines(open == std::string_view::npos ? before : before.substr(open + 7),
                                   true, false);
        content = strip_newlines(content.substr(content.rfind("</think>") + 8), true, false);
      }
      out += "<|im_start|>assistant\n";
      if (i > last_query && (i + 1 == int(messages.size()) || !reasoning.empty())) {
        out += "<think>\n";
        out += strip_newlines(reasoning, true, true);
        out += "\n</think>\n\n";
        out += strip_newlines(content, true, false);
      } else {
        out += content;
      }
      out += "<|im_end|>\n";
    }
  }
  return out;
}

}  // namespace

std::string ChatTemplate::render(std::span<const ChatMessage> messages,
                                 bool add_generation_prompt) const {
  for (const auto& m : messages)
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      fail("[chat_template] unsupported role '", m.role, "' (system, user, assistant)");
  std::string out;
  if (format_ == ChatFormat::kDeepSeek) {
    // All system messages first (joined by a blank line), then the turns.
    out = bos_token_;
    bool first_system = true;
    for (const auto& m : messages) {
      if (m.role != "system") continue;
      if (!first_system) out += "\n\n";
      out += m.content;
      first_system = false;
    }
    for (const auto& m : messages) {
      if (m.role == "user") out += "<｜User｜>" + m.content;
      if (m.role == "assistant") out += "<｜Assistant｜>" + m.content + eos_token_;
    }
    if (add_generation_prompt) out += "<｜Assistant｜>";
    return out;
  }
  if (format_ == ChatFormat::kQwen3) {
    out = render_qwen3(messages);
  } else {
    for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace aha::datasets
