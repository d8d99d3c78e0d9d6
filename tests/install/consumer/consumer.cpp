// Uses two installed aha libraries: the math checker (aha::rewards) and the report escaper
// (aha::runlog). Exits non-zero when either answers wrongly.
#include <cstdio>

#include "aha/rewards/math.h"
#include "aha/runlog/report.h"

int main() {
  const bool equal =
      aha::rewards::math_equal("\\frac{1}{2}", "0.5") == aha::rewards::MathVerdict::kEqual;
  const bool escaped = aha::runlog::html_escape("<b>") == "&lt;b&gt;";
  std::printf("math_equal(1/2, 0.5): %d, html_escape: %d\n", equal, escaped);
  return equal && escaped ? 0 : 1;
}
