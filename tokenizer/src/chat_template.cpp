// Chat templates from tokenizer_config.json, rendered as HF transformers' apply_chat_template.
#include "aha/tokenizer/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "aha/core/error.h"
#include "aha/tokenizer/tokenizer.h"

namespace aha::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;

std::string token_text(const OJson& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return "";
}

jinja::Template parse_named(const std::string& name, const std::string& source) {
  try {
    return jinja::Template::parse(source);
  } catch (const Error& e) {
    fail("[chat_template] template '", name, "': ", e.what());
  }
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("[chat_template] cannot read ", path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

ChatTemplate ChatTemplate::from_config(const OJson& config) {
  if (!config.is_object()) fail("[chat_template] tokenizer_config.json is not a JSON object");
  ChatTemplate t;
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null())
    fail("[chat_template] tokenizer_config.json has no chat_template");
  if (it->is_string()) {
    t.templates_.push_back({"default", parse_named("default", it->get<std::string>())});
  } else if (it->is_array()) {
    for (const auto& e : *it) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
          !e.contains("template") || !e["template"].is_string())
        fail("[chat_template] chat_template list entries must be {\"name\": .., \"template\": ..}");
      std::string name = e["name"].get<std::string>();
      t.templates_.push_back({name, parse_named(name, e["template"].get<std::string>())});
    }
  } else {
    fail("[chat_template] chat_template must be a string or a list of named templates");
  }
  if (t.templates_.empty()) fail("[chat_template] chat_template list is empty");
  // HF passes every special token of the tokenizer to the template.
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "sep_token",
                          "cls_token", "mask_token"})
    if (std::string v = token_text(config, key); !v.empty()) t.special_tokens_[key] = v;
  t.bos_token_ = token_text(config, "bos_token");
  t.eos_token_ = token_text(config, "eos_token");
  return t;
}

ChatTemplate ChatTemplate::load(const std::string& checkpoint_dir) {
  namespace fs = std::filesystem;
  fs::path dir(checkpoint_dir);
  fs::path config_path = dir / "tokenizer_config.json";
  OJson config = OJson::object();
  if (fs::exists(config_path)) {
    try {
      config = OJson::parse(read_file(config_path));
    } catch (const nlohmann::json::exception& e) {
      fail("[chat_template] ", config_path.string(), " is not valid JSON: ", e.what());
    }
  }
  if (config.is_object() && !config.contains("chat_template") && fs::exists(dir / "chat_template.jinja"))
    config["chat_template"] = read_file(dir / "chat_template.jinja");
  if (!config.is_object() || !config.contains("chat_template"))
    fail("[chat_template] ", checkpoint_dir, " has no chat template (no chat_template in ",
         "tokenizer_config.json, no chat_template.jinja); use a {prompt} template instead");
  return from_config(config);
}

// As HF: the named template the caller asks for, else "tool_use" when tools are given, else
// "default".
const jinja::Template& ChatTemplate::pick(bool has_tools) const {
  if (templates_.size() == 1) return templates_[0].tmpl;
  for (const char* want : {has_tools ? "tool_use" : "default", "default"})
    for (const auto& n : templates_)
      if (n.name == want) return n.tmpl;
  fail("[chat_template] the chat_template list has no 'default' template");
}

std::string ChatTemplate::render(const OJson& messages, bool add_generation_prompt,
                                 const OJson& tools, const OJson& extra_context) const {
  if (!messages.is_array()) fail("[chat_template] messages must be a list");
  if (!tools.is_null() && !tools.is_array()) fail("[chat_template] tools must be a list or null");
  OJson context = special_tokens_;
  context["messages"] = messages;
  context["tools"] = tools;
  context["documents"] = nullptr;
  context["add_generation_prompt"] = add_generation_prompt;
  if (extra_context.is_object())
    for (const auto& [k, v] : extra_context.items()) context[k] = v;
  try {
    return pick(!tools.is_null()).render(context);
  } catch (const Error& e) {
    fail("[chat_template] ", e.what());
  }
}

std::string ChatTemplate::render_user_prompt(const std::string& text, const std::string& system,
                                             const OJson& extra_context) const {
  OJson messages = OJson::array();
  if (!system.empty()) messages.push_back(OJson{{"role", "system"}, {"content", system}});
  messages.push_back(OJson{{"role", "user"}, {"content", text}});
  return render(messages, true, nullptr, extra_context);
}

std::function<std::string(const std::string&)> chat_prompt_renderer(
    const std::string& checkpoint_dir, const Tokenizer* tok, const Json& data) {
  std::string system;
  OJson kwargs = nullptr;
  if (data.is_object()) {
    if (auto it = data.find("system_prompt"); it != data.end() && !it->is_null()) {
      if (!it->is_string()) fail("data.system_prompt must be a string");
      system = it->get<std::string>();
    }
    if (auto it = data.find("chat_template_kwargs"); it != data.end() && !it->is_null()) {
      if (!it->is_object()) fail("data.chat_template_kwargs must be an object");
      kwargs = OJson::parse(it->dump());
    }
  }
  auto tmpl = std::make_shared<const ChatTemplate>(ChatTemplate::load(checkpoint_dir));
  bool tok_adds_bos = false;
  if (tok != nullptr && tok->bos_id()) {
    std::vector<int32_t> ids = tok->encode("", true);
    tok_adds_bos = !ids.empty() && ids.front() == *tok->bos_id();
  }
  std::string bos = tok_adds_bos ? tmpl->bos_token() : "";
  return [tmpl, bos, system, kwargs](const std::string& text) {
    std::string out = tmpl->render_user_prompt(text, system, kwargs);
    if (!bos.empty() && out.starts_with(bos)) out.erase(0, bos.size());
    return out;
  };
}

}  // namespace aha::tokenizer
