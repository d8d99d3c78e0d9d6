// `aha make-data`: synthetic datasets as JSONL (problems, or pretraining documents).
#include <iostream>

#include "aha/datasets/synthetic.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_make_data(const Args& args) {
  po::options_description desc("options");
  std::string task;
  int64_t n = 1000;
  uint64_t seed = 0;
  bool documents = false;
  datasets::AdditionTask t;
  std::vector<int> digits;
  desc.add_options()
      ("task", po::value(&task)->default_value("addition"), "addition | linear")
      ("n", po::value(&n)->default_value(1000), "rows")
      ("seed", po::value(&seed)->default_value(0), "generator seed")
      ("split", po::value(&t.split)->default_value("train"), "train | eval | all")
      ("digits", po::value(&digits)->multitoken(), "operand digits: MIN MAX (default 1 2)")
      ("documents", po::bool_switch(&documents), "pretraining documents (a \"text\" field)")
      ("p-sloppy", po::value(&t.p_sloppy)->default_value(0.5), "share forgetting carries")
      ("p-wrong-answer", po::value(&t.p_wrong_answer)->default_value(0.3), "share wrong answers")
      ("p-no-format", po::value(&t.p_no_format)->default_value(0.25), "share without tags")
      ("template", po::value(&t.templ)->default_value(""),
       "document prompt template with {prompt} (default: the R1-Zero template)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha make-data --task addition --n N [--documents]")) {
    return 0;
  }
  if (task != "addition" && task != "linear") fail("unknown task '", task, "' (known: addition, linear)");
  if (n < 1) fail("--n must be >= 1");
  if (!digits.empty()) {
    if (digits.size() != 2) fail("--digits takes MIN MAX");
    t.min_digits = digits[0];
    t.max_digits = digits[1];
  }
  if (t.templ == "r1_zero") t.templ.clear();
  auto rows = task == "linear" ? datasets::linear_equations(n, seed, 9 * t.max_digits, t.split)
                               : datasets::addition_problems(n, seed, t, documents);
  for (const auto& e : rows) {
    Json row = e.row;
    row["id"] = e.id;
    std::cout << row.dump() << "\n";
  }
  return 0;
}

}  // namespace aha::cli
