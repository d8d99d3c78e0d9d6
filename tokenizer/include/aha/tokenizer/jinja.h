// A small Jinja interpreter for the chat templates that ship in tokenizer_config.json: the subset
// those templates use (docs/agentic.md lists it), rendering what Python's jinja2 renders under
// the settings HF transformers uses (trim_blocks, lstrip_blocks, loop controls, its tojson).
// Templates are untrusted input: output size, loop iterations and nesting depth are bounded, and
// every error is an aha::Error "[jinja] line N: ..." naming the template line.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace aha::tokenizer::jinja {

struct Options {
  bool trim_blocks = true;             // drop the first newline after a {% %} / {# #} tag
  bool lstrip_blocks = true;           // drop spaces/tabs before a tag that starts its line
  bool keep_trailing_newline = false;  // jinja2 drops one newline at the end of the source
};

struct Limits {
  int64_t max_output_bytes = int64_t(64) << 20;
  int64_t max_steps = 20'000'000;  // statements executed + loop iterations, over one render
  int max_depth = 64;              // nested macro calls
};

struct Program;

// Parsed once, rendered many times. Immutable after parse: render() may run on many threads.
class Template {
 public:
  // Throws aha::Error on a syntax error (an unknown tag, an unclosed block, a bad expression).
  static Template parse(std::string_view source, const Options& options = {});
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  ~Template();

  // `context` holds the template's variables (an object; key order is kept, so tojson prints
  // dicts in insertion order as Python does). Throws aha::Error on a runtime error, on
  // raise_exception() and when a limit is exceeded.
  std::string render(const nlohmann::ordered_json& context, const Limits& limits = {}) const;

 private:
  explicit Template(std::unique_ptr<Program> program);
  std::unique_ptr<Program> program_;
};

}  // namespace aha::tokenizer::jinja
