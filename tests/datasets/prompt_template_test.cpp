// Prompt templates: {field} substitution and its errors, the R1-Zero template, and "chat" (a
// prompt rendered through the checkpoint's chat template).
#include <gtest/gtest.h>

#include "aha/core/error.h"
#include "aha/datasets/prompt_template.h"

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

// "chat": the prompt goes through the renderer the caller hands in (the checkpoint's chat template,
// tests/tokenizer/chat_template_test.cpp), loaded only when "chat" is asked for.
TEST(PromptTemplate, ChatRendersThePromptThroughTheCheckpointTemplate) {
  int loads = 0;
  auto load = [&]() -> ChatRenderer {
    ++loads;
    return [](const std::string& user) { return "<u>" + user + "</u><a>"; };
  };
  PromptTemplate chat = PromptTemplate::from_config("chat", load);
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(chat.render(Json{{"prompt", "2+2?"}}), "<u>2+2?</u><a>");
  EXPECT_EQ(chat.render_row(Json{{"question", "What is {x}?"}, {"answer", "4"}}),
            "<u>What is {x}?</u><a>");
  EXPECT_THROW(chat.render(Json{{"question", "no prompt"}}), Error);
  EXPECT_THROW(chat.render(Json{{"prompt", 5}}), Error);
  EXPECT_EQ(PromptTemplate::from_config("r1_zero", load).render(Json{{"prompt", "x"}}),
            PromptTemplate::from_config("r1_zero").render(Json{{"prompt", "x"}}));
  EXPECT_EQ(loads, 1);
  EXPECT_THROW(PromptTemplate::from_config("chat"), Error);
  EXPECT_THROW(PromptTemplate::from_config("chat", [] { return ChatRenderer(); }), Error);
}

}  // namespace
}  // namespace aha::datasets
