// Errors: aha::Error for run-ending problems (bad config, corrupt checkpoint), AHA_CHECK for
// broken invariants. Both reach the user as one `error: ...` line from cli/main.cpp.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace aha {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void check_failed(const char* file, int line, const char* expr,
                               const std::string& msg);
}  // namespace detail

// Throws aha::Error whose message is the concatenation of the arguments.
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::cat(args...));
}

}  // namespace aha

// A broken invariant throws (never aborts) so a long run can report it and exit cleanly.
#define AHA_CHECK(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) ::aha::detail::check_failed(__FILE__, __LINE__, #cond,               \
                                             ::aha::detail::cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
