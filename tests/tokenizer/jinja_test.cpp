// The Jinja interpreter against Python's jinja2 (golden file from tests/reference/
// gen_jinja_golden.py: every feature, text for text, and the same refusals), plus the limits
// that make untrusted templates safe.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "aha/core/error.h"
#include "aha/tokenizer/jinja.h"

namespace aha::tokenizer::jinja {
namespace {

using OJson = nlohmann::ordered_json;

std::string render(const std::string& source, const OJson& context = OJson::object(),
                   const Limits& limits = {}) {
  return Template::parse(source).render(context, limits);
}

std::string error_of(const std::string& source, const Limits& limits = {}) {
  try {
    render(source, OJson::object(), limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jinja, MatchesJinja2OnEveryFeature) {
  std::ifstream f(std::string(AHA_SOURCE_DIR) + "/tests/data/jinja_cases.json");
  ASSERT_TRUE(f) << "tests/data/jinja_cases.json is missing";
  std::stringstream ss;
  ss << f.rdbuf();
  // ordered_json: tojson must print the context's dicts in their file order, as Python does.
  const OJson golden = OJson::parse(ss.str());
  ASSERT_GE(golden["cases"].size(), 40u);
  for (const OJson& c : golden["cases"]) {
    const std::string name = c["name"], source = c["template"];
    if (c.contains("expected")) {
      std::string got;
      try {
        got = render(source, c["context"]);
      } catch (const Error& e) {
        ADD_FAILURE() << name << ": " << e.what();
        continue;
      }
      EXPECT_EQ(got, c["expected"].get<std::string>()) << name;
    } else {
      std::string err;
      try {
        render(source, c["context"]);
      } catch (const Error& e) {
        err = e.what();
      }
      EXPECT_FALSE(err.empty()) << name << ": jinja2 refuses it (" << c["error"] << "), aha did not";
      EXPECT_NE(err.find("[jinja] line "), std::string::npos) << name << ": " << err;
      if (c.contains("error_line")) {
        EXPECT_NE(err.find("line " + std::to_string(c["error_line"].get<int>()) + ":"),
                  std::string::npos)
            << name << ": " << err;
      }
    }
  }
}

TEST(Jinja, ErrorsNameTheLineAndTheCause) {
  EXPECT_EQ(error_of("a\nb\n{{ raise_exception('no tools here') }}"),
            "[jinja] line 3: raise_exception: no tools here");
  EXPECT_NE(error_of("{% for x in y %}\n{% if x %}\n").find("line 2: unexpected end of template: a block is not closed with '{% endif %}'"), std::string::npos);
  EXPECT_NE(error_of("x\n{{ a.b }}").find("line 2: 'a' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{% set x = 1 %}{% set x.y = 2 %}").find("not a namespace()"),
            std::string::npos);
}

TEST(Jinja, TrimBlocksAndLstripBlocksAreOptions) {
  const std::string src = "a\n  {% if true %}\nb\n  {% endif %}\n";
  EXPECT_EQ(Template::parse(src).render(OJson::object()), "a\nb\n");
  Options raw{.trim_blocks = false, .lstrip_blocks = false, .keep_trailing_newline = true};
  EXPECT_EQ(Template::parse(src, raw).render(OJson::object()), "a\n  \nb\n  \n");
}

TEST(Jinja, BoundsHostileTemplates) {
  Limits small{.max_output_bytes = 1 << 20, .max_steps = 100000, .max_depth = 16};
  EXPECT_NE(error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", small)
                .find("steps"),
            std::string::npos);
  EXPECT_NE(error_of("{% set s = 'x' * 100000 %}{% for i in range(100) %}{{ s }}{% endfor %}", small)
                .find("exceeds"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", small).find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}")
                .find("nested too deeply"),
            std::string::npos);
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of(ifs).find("nested too deeply"), std::string::npos);
  EXPECT_NE(error_of("{{ range(100000000) }}").find("range()"), std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 1000000000 }}").find("too large"), std::string::npos);
}

// Random edits of a chat-template-like source: every outcome is a rendering or an aha::Error.
TEST(Jinja, MutatedTemplatesNeverCrash) {
  const std::string base =
      "{%- set ns = namespace(a=0) %}{% for m in messages[::-1] if m.role != 'x' %}"
      "{{- '<' ~ m.role ~ '>' + m.content | trim }}{% if loop.last %}{% set ns.a = loop.index %}"
      "{% elif m.content.startswith('a') %}{{ m | tojson(indent=1) }}{% else %}{{ m.content.split('b')[-1] }}"
      "{% endif %}{% endfor %}{{ ns.a }}{% macro f(x, y=2) %}{{ x * y }}{% endmacro %}{{ f(3) }}";
  OJson ctx = {{"messages", OJson::array({{{"role", "user"}, {"content", "abc b"}},
                                          {{"role", "assistant"}, {"content", " x "}}})}};
  ASSERT_NO_THROW(render(base, ctx));
  const std::string alphabet = "{}%#-+()[]'\".|~:,=*/ abcdefimnorstx0123456789\n";
  std::mt19937 rng(7);
  Limits small{.max_output_bytes = 1 << 16, .max_steps = 10000, .max_depth = 8};
  int rendered = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = base;
    for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k) {
      size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s.erase(at, 1 + rng() % 3); break;
        case 1: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        default: s[at] = alphabet[rng() % alphabet.size()];
      }
    }
    try {
      render(s, ctx, small);
      ++rendered;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(rendered, 100);
}

}  // namespace
}  // namespace aha::tokenizer::jinja
