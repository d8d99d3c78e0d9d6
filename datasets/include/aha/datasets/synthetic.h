// Synthetic tasks with verifiable answers for the R1-Zero demo: multi-digit addition whose
// worked solution goes digit by digit with carries. The problem space is split by a hash of
// the question, so held-out problems never appear in training data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "aha/datasets/dataset.h"

namespace aha::datasets {

struct AdditionTask {
  int min_digits = 1, max_digits = 2;
  std::string split = "train";  // train | eval | all (eval: one question in ten, by hash)
  // Pretraining documents ("text" field): with probability p_sloppy the worked solution forgets
  // the carries, with p_wrong_answer the final answer is off, with p_no_format the tags are
  // missing. These make a base model that is mediocre in ways RL can fix.
  double p_sloppy = 0.5, p_wrong_answer = 0.3, p_no_format = 0.25;
  std::string templ;  // prompt template with {prompt} ("" : the R1-Zero template)
};

// n distinct problems (fewer when the space is smaller). Rows: question, answer, prompt and,
// for documents, text = rendered prompt + completion.
std::vector<Example> addition_problems(int64_t n, uint64_t seed, const AdditionTask& task,
                                       bool with_text);

// Linear equations a*x + b = c with integer solutions ("Solve for x: 3x + 5 = 20."), answer x.
// Coefficients up to max_coef in absolute value; the split works as for addition.
std::vector<Example> linear_equations(int64_t n, uint64_t seed, int max_coef,
                                      const std::string& split = "train");

// The correct worked solution of a + b in the R1-Zero format.
std::string addition_solution(int64_t a, int64_t b, bool sloppy);

// Countdown (TinyZero): reach a target with every given number once and + - * /. Targets are
// built by combining the numbers at random (exact divisions, no negatives), so every problem has
// a solution; rows carry question, numbers, target and answer (one solution). Documents
// ("text") show the worked steps "a op b = r , ..." and the expression, with the flaw knobs:
// p_wrong_answer miscomputes a step, p_no_format drops the tags.
struct CountdownTask {
  int min_numbers = 3, max_numbers = 4;
  int max_number = 25;
  std::string split = "train";  // train | eval | all (eval: one question in ten, by hash)
  double p_wrong_answer = 0.3, p_no_format = 0.25;
  std::string templ;  // document prompt template with {prompt} ("": the R1-Zero template)
};
std::vector<Example> countdown_problems(int64_t n, uint64_t seed, const CountdownTask& task,
                                        bool with_text);

}  // namespace aha::datasets
