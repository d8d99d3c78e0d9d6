// Shared option parsing for subcommands: Boost.program_options with `--help` on every command.
#pragma once

#include <boost/program_options.hpp>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "aha/core/error.h"

namespace aha::cli {

namespace po = boost::program_options;

// Help width: wide enough that boost never has to break a word of a description (it splits
// words longer than the description column, which at its default of 80 is often narrow).
inline constexpr unsigned kHelpWidth = 110;

// Parses args into vm. Returns false after printing help when --help was given.
// Unknown options and bad values become aha::Error (one `error:` line).
inline bool parse_options(const std::vector<std::string>& args, po::options_description& desc,
                          po::variables_map& vm, const std::string& usage,
                          const po::positional_options_description* positional = nullptr) {
  desc.add_options()("help,h", "show this help");
  try {
    auto parser = po::command_line_parser(args).options(desc);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n\n" << desc << "\n";
      return false;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    fail(e.what(), " (see --help)");
  }
  return true;
}

// "math,,format" -> {"math", "format"}: the non-empty items of a comma list.
inline std::vector<std::string> comma_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// "1,16,64" -> {1, 16, 64}; anything but integers from `least` up is an error naming `what`.
inline std::vector<int64_t> parse_int_list(const std::string& s, const char* what,
                                           int64_t least = 1) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < least) {
      fail(what, ": expected ", least == 1 ? "positive" : "non-negative",
           " integers separated by commas, got '", s, "'");
    }
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace aha::cli
