// `aha make-data`: synthetic datasets as JSONL (problems, or pretraining documents).
#include <iostream>

#include "aha/datasets/synthetic.h"
#include "commands.h"
#include "options.h"

namespace aha::cli {

int cmd_make_data(const Args& args) {
  po::options_description desc("options", kHelpWidth, kHelpWidth / 2);
  std::string task;
  int64_t n = 1000;
  uint64_t seed = 0;
  bool documents = false;
  datasets::AdditionTask t;
  datasets::CountdownTask cd;
  std::vector<int> numbers;
  std::vector<int> digits;
  desc.add_options()
      ("task", po::value(&task)->default_value("addition"), "addition | linear | countdown")
      ("n", po::value(&n)->default_value(1000), "rows")
      ("seed", po::value(&seed)->default_value(0), "generator seed")
      ("split", po::value(&t.split)->default_value("train"), "train | eval | all")
      ("digits", po::value(&digits)->multitoken(), "operand digits: MIN MAX (default 1 2)")
      ("numbers", po::value(&numbers)->multitoken(), "countdown: how many numbers, MIN MAX (default 3 4)")
      ("max-number", po::value(&cd.max_number)->default_value(25), "countdown: largest number")
      ("documents", po::bool_switch(&documents), "pretraining documents (a \"text\" field)")
      ("p-sloppy", po::value(&t.p_sloppy)->default_value(0.5, "0.5"), "share forgetting carries")
      ("p-wrong-answer", po::value(&t.p_wrong_answer)->default_value(0.3, "0.3"), "share wrong answers")
      ("p-no-format", po::value(&t.p_no_format)->default_value(0.25, "0.25"), "share without tags")
      ("template", po::value(&t.templ)->default_value(""),
       "document prompt template with {prompt} (default: the R1-Zero template)");
  po::variables_map vm;
  if (!parse_options(args, desc, vm, "usage: aha make-data --task addition --n N [--documents]")) {
    return 0;
  }
  if (task != "addition" && task != "linear" && task != "countdown") {
    fail("unknown task '", task, "' (known: addition, linear, countdown)");
  }
  if (n < 1) fail("--n must be >= 1");
  if (!digits.empty()) {
    if (digits.size() != 2) fail("--digits takes MIN MAX");
    t.min_digits = digits[0];
    t.max_digits = digits[1];
  }
  if (t.templ == "r1_zero") t.templ.clear();
  if (!numbers.empty()) {
    if (numbers.size() != 2) fail("--numbers takes MIN MAX");
    cd.min_numbers = numbers[0];
    cd.max_numbers = numbers[1];
  }
  cd.split = t.split;
  cd.templ = t.templ;
  cd.p_wrong_answer = t.p_wrong_answer;
  cd.p_no_format = t.p_no_format;
  std::vector<datasets::Example> rows;
  if (task == "linear") {
    rows = datasets::linear_equations(n, seed, 9 * t.max_digits, t.split);
  } else if (task == "countdown") {
    rows = datasets::countdown_problems(n, seed, cd, documents);
  } else {
    rows = datasets::addition_problems(n, seed, t, documents);
  }
  for (const auto& e : rows) {
    Json row = e.row;
    row["id"] = e.id;
    std::cout << row.dump() << "\n";
  }
  return 0;
}

}  // namespace aha::cli
