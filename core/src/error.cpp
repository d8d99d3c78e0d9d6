// Formatting of failed invariant checks.
#include "aha/core/error.h"

namespace aha::detail {

void check_failed(const char* file, int line, const char* expr, const std::string& msg) {
  std::string text = cat("internal check failed at ", file, ":", line, ": ", expr);
  if (!msg.empty()) text += " (" + msg + ")";
  throw Error(text);
}

}  // namespace aha::detail
