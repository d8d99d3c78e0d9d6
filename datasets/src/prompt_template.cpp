// Prompt templates: `{field}` substitution, the R1-Zero template, and "chat" through a renderer
// the caller supplies.
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

PromptTemplate PromptTemplate::from_config(const std::string& name_or_text,
                                           const std::function<ChatRenderer()>& load_chat) {
  if (!is_chat(name_or_text)) return from_config(name_or_text);
  PromptTemplate t("{prompt}");
  t.chat_ = load_chat();
  if (!t.chat_) fail("data.template 'chat': no chat template to render with");
  return t;
}

PromptTemplate PromptTemplate::from_config(const std::string& name_or_text) {
  if (is_chat(name_or_text))
    fail("data.template 'chat' needs the checkpoint's chat template, which this command does not "
         "load; use r1_zero or a {prompt} template");
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
  if (chat_) {
    auto it = values.is_object() ? values.find("prompt") : values.end();
    if (it == values.end() || !it->is_string())
      fail("[prompt_template] chat: no string 'prompt' in ", values.dump().substr(0, 200));
    return chat_(it->get<std::string>());
  }
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

}  // namespace aha::datasets
