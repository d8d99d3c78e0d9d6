// `aha tokenize`: JSONL text -> ids (and back with --decode) with a checkpoint's tokenizer.
#include <iostream>
#include <string>

#include "aha/core/config.h"
#include "aha/tokenizer/tokenizer.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

namespace {

Json parse_line(const std::string& line, size_t line_no) {
  return parse_json(line, "stdin line " + std::to_string(line_no));
}

}  // namespace

int cmd_tokenize(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  desc.add_options()("tokenizer,t", po::value<std::string>()->required(),
                     "checkpoint directory or tokenizer.json")(
      "decode", po::bool_switch(), "read {\"ids\":[..]} lines, write {\"text\":..}")(
      "add-special", po::bool_switch(), "encode: add BOS/EOS as the tokenizer config asks")(
      "skip-special", po::bool_switch(), "decode: drop special tokens");
  po::variables_map vm;
  if (!parse_options(args, desc, vm,
                     "usage: aha tokenize --tokenizer T [--decode] < in.jsonl > out.jsonl\n"
                     "  encode: {\"text\": \"..\"} -> {\"ids\": [..]} per line\n"
                     "  decode: {\"ids\": [..]} -> {\"text\": \"..\"} per line"))
    return 0;
  auto tok = tokenizer::Tokenizer::load(vm["tokenizer"].as<std::string>());
  bool decode = vm["decode"].as<bool>();
  bool add_special = vm["add-special"].as<bool>();
  bool skip_special = vm["skip-special"].as<bool>();
  std::ios::sync_with_stdio(false);
  std::string line;
  std::vector<int32_t> ids;
  for (size_t line_no = 1; std::getline(std::cin, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json in = parse_line(line, line_no);
    if (!decode) {
      if (!in.is_object() || !in.contains("text") || !in["text"].is_string())
        fail("stdin line ", line_no, ": expected {\"text\": string}");
      ids.clear();
      tok.encode_append(in["text"].get_ref<const std::string&>(), ids, add_special);
      std::cout << Json{{"ids", ids}}.dump() << '\n';
    } else {
      if (!in.is_object() || !in.contains("ids") || !in["ids"].is_array())
        fail("stdin line ", line_no, ": expected {\"ids\": [int, ...]}");
      ids.clear();
      for (const Json& v : in["ids"]) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
            v.get<int64_t>() >= tok.vocab_size())
          fail("stdin line ", line_no, ": id ", v.dump(), " is not in [0, ", tok.vocab_size(), ")");
        ids.push_back(v.get<int32_t>());
      }
      std::string text;
      try {
        text = tok.decode_utf8(ids, skip_special);
      } catch (const Error& e) {
        fail("stdin line ", line_no, ": ", e.what());
      }
      std::cout << Json{{"text", text}}.dump() << '\n';
    }
  }
  return 0;
}

}  // namespace aha::cli
