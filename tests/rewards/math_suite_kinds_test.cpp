// Table-driven agreement test of the kinds of answers measured against the public verifier
// suites for issue 15 (labelled answers, inequalities up to a factor, joined boxes, answer
// sentences, approximation glosses, number formats, choice letters, anchors after a box).
// Every case is invented for aha; each kind has equal and unequal pairs, and predictions that
// merely restate an equation must score 0.
#include <gtest/gtest.h>

#include "rewards/math_suite_runner.h"

namespace aha::rewards {
namespace {

using namespace suite;

// clang-format off
const SuiteCase kKinds[] = {
  // --- labels: a left side made of names only, or a function of one letter, names the value ---
  {"g(3) = 7", "7", Y, kAny}, {"g(3) = 7", "8", N, kAny}, {"h(-1) = \\frac{1}{2}", "0.5", Y, kAny},
  {"P(A) = \\frac{1}{4}", "\\frac14", Y, kAny}, {"P(A) = \\frac{1}{4}", "\\frac13", N, kAny},
  {"(a, b) = (4, -1)", "(4, -1)", Y, kAny}, {"(a, b) = (4, -1)", "(-1, 4)", N, kAny},
  {"(m,n,k)=(1,2,3)", "(1,2,3)", Y, kAny}, {"(m,n,k)=(1,2,3)", "(1,3,2)", N, kAny},
  {"PQ = 6", "6", Y, kAny}, {"|CD| = 9", "9", Y, kAny}, {"|CD| = 9", "3", N, kAny},
  {"a:b = 3:5", "3:5", Y, kAny}, {"a:b = 3:5", "5:3", N, kAny},
  {"\\frac{AM}{MB} = \\frac{2}{3}", "\\frac{2}{3}", Y, kAny},
  {"\\frac{AM}{MB} = \\frac{2}{3}", "\\frac{3}{2}", N, kAny},
  {"EF = 2, GH = 7", "2, 7", Y, kAny}, {"EF = 2, GH = 7", "2, 8", N, kAny},
  {"7", "q(5) = 7", Y, kAny}, {"f(x) = 3x - 1", "y = 3x - 1", Y, kAny},
  {"f(x) = 3x - 1", "y = 3x + 1", N, kAny}, {"g(t) = t^2 + 1", "y = t^2 + 1", Y, kAny},
  {"m\\angle A = 30", "30", Y, kAny}, {"m\\angle A = 30", "60", N, kAny}, {"E[X] = 3.5", "3.5", Y, kAny},
  {"E[X] = 3.5", "3", N, kAny},  // a left side the parser does not read still labels
  {"a=1,b=4;a=4,b=1", "(1,4),(4,1)", Y, kAny}, {"a=1,b=4;a=4,b=1", "(1,4),(1,4)", N, kAny},
  {"(1,4),(4,1)", "m=4,n=1; m=1,n=4", Y, kAny},
  // an equation between two expressions is no label: its right side alone is not the answer
  {"5 = 2p + q", "2p + q", N, kAny}, {"3y - w = 0", "0", N, kAny}, {"m^2 + n = 4", "4", N, kAny},
  {"4 = 3k + 1", "4", N, kAny}, {"4 = 3k + 1", "1", Y, kAny},  // solved: k = 1
  // a label inside the box's \\text, a percent after the last number, a sentence opening "So"
  {"\\frac{2}{5}", "\\boxed{\\text{Answer: } \\frac25}", Y, kRaw},
  {"\\frac{2}{5}", "\\boxed{\\textbf{Answer:} \\frac35}", N, kRaw},
  {"0.35", "The chance is 35\\% overall.", Y, kRaw}, {"0.35", "The chance is 3.5\\% overall.", N, kRaw},
  {"0.35", "so about 35 percent of them", Y, kRaw},
  {"31", "So 31 cards of them.", Y, kRaw}, {"31", "So 13 cards of them.", N, kRaw},
  // font commands around a letter, a stray backslash at the end, ",\\!" thousands in any
  // grouping; a primed letter is another symbol
  {"\\mathcal{C}", "C", Y, kAny}, {"D", "\\mathscr{D}", Y, kAny}, {"\\mathcal{C}", "D", N, kAny},
  {"417\\", "417", Y, kAny}, {"417", "418\\", N, kAny},
  {"34,\\!05,\\!120", "3405120", Y, kAny}, {"3405120", "34,\\!05,\\!121", N, kAny},
  {"D", "D'", N, kAny}, {"D'", "D", N, kAny}, {"D'", "D'", Y, kAny},
  // a gold chain of computation is read by its last side
  {"1 = b = y = 6", "6", Y, kAny}, {"1 = b = y = 6", "1", N, kAny},
  // a solution list repeated in the answer is the same set; a gold that repeats a value counts it
  {"(2,5),(5,2)", "(5,2),(2,5),(5,2)", Y, kAny}, {"(2,5),(5,2)", "(5,2),(5,2)", N, kAny},
  {"3, 3, 4", "3, 4, 4", N, kAny}, {"3, 3, 4", "4, 3, 3", Y, kAny},
  // boxes in one formula with only operators between them are one answer
  {"$\\boxed{7 \\text{ cm}} + + \\boxed{2}$", "7, 2", Y, kAny},
  {"$\\boxed{7 \\text{ cm}} + + \\boxed{2}$", "2", N, kAny},
  {"7, 2", "so $\\boxed{7} \\;|\\; \\boxed{2}$", Y, kRaw},
  // a predicted equation is read by its last side; restating the problem scores 0
  {"12", "3 \\cdot 4 = 12", Y, kAny}, {"5", "2x + 3 = 13", N, kAny}, {"k = 2", "k^2 = 4", N, kAny},
  // --- inequalities: the same up to a factor (flipped by a negative one), chains on a label ---
  {"t < 4", "-t > -4", Y, kAny}, {"t < 4", "-t < -4", N, kAny}, {"y \\ge -2", "-2y \\le 4", Y, kAny},
  {"3x \\le 6", "x \\le 2", Y, kAny}, {"3x \\le 6", "x < 2", N, kAny}, {"x > 1", "2x > 3", N, kAny},
  {"2 < f(t) < 5", "(2, 5)", Y, kAny}, {"2 < f(t) < 5", "[2, 5]", N, kAny},
  {"-1 \\le g(x) \\le 1", "[-1, 1]", Y, kAny}, {"-1 \\le g(x) \\le 1", "(-1, 1)", N, kAny},
  {"x < -1 \\text{ or } x > 2", "(-\\infty, -1) \\cup (2, \\infty)", Y, kAny},
  {"x < -1 \\text{ or } x \\ge 2", "(-\\infty, -1) \\cup (2, \\infty)", N, kAny},
  {"t \\le 0 \\text{ or } t > 3", "(-\\infty, 0] \\cup (3, \\infty)", Y, kAny},
  // --- several boxes joined by spacing, a conjunction or a few words with one ---
  {"3, 8", "So $\\boxed{3} \\quad \\text{and} \\quad \\boxed{8}$", Y, kRaw},
  {"3, 8", "So $\\boxed{3} \\quad \\text{and} \\quad \\boxed{9}$", N, kRaw},
  {"(1, 2), (2, 1)", "$\\boxed{(1, 2)} \\text{ for the first part and } \\boxed{(2, 1)}$", Y, kRaw},
  {"4, 9", "\\boxed{4} apples and \\boxed{9} pears", Y, kRaw},
  {"4, 9", "We first guessed \\boxed{4}, but rechecking gives \\boxed{9}", N, kRaw},
  {"9", "We first guessed \\boxed{4}, but rechecking gives \\boxed{9}", Y, kRaw},
  {"\\boxed{2} and \\boxed{-5}", "-5, 2", Y, kAny}, {"\\boxed{2} and \\boxed{-5}", "-5", N, kAny},
  {"u = 2x + 1, v = x - 3", "\\( u = \\boxed{2x + 1} \\) and \\( v = \\boxed{x - 3} \\)", Y, kRaw},
  {"u = 2x + 1, v = x - 3", "\\( u = \\boxed{2x + 1} \\) and \\( v = \\boxed{x + 3} \\)", N, kRaw},
  {"(3,5)or(5,3)", "(5,3), (3,5)", Y, kAny}, {"(3,5)or(5,3)", "(5,3), (3,6)", N, kAny},
  {"x_1 = 2,\\quadx_2 = 5", "2, 5", Y, kAny}, {"x_1 = 2,\\quadx_2 = 5", "2, 6", N, kAny},
  // --- an answer sentence: the value after its copula ---
  {"27", "Final answer: the smallest $k$ is 27.", Y, kRaw},
  {"28", "Final answer: the smallest $k$ is 27.", N, kRaw},
  {"15", "Answer: the number of handshakes is 15", Y, kRaw},
  {"\\frac{3}{7}", "答案：概率是 \\(\\frac{3}{7}\\)。", Y, kRaw},
  {"3/7", "答案：每份是 (\\frac{3}{7}) 升。", Y, kRaw}, {"3/8", "答案：每份是 (\\frac{3}{7}) 升。", N, kRaw},
  {"0.6", "Réponse : la probabilité est 0,6.", Y, kRaw},
  {"C", "la réponse est C et non B", Y, kRaw}, {"C", "la réponse est B et non C", N, kRaw},
  {"79", "La respuesta correcta es 79, ya que 100 - 21 = 79 y sobran 21.", Y, kRaw},
  {"21", "La respuesta correcta es 79, ya que 100 - 21 = 79 y sobran 21.", N, kRaw},
  {"79", "Le résultat est 79 g, car 100 - 21 = 79 et il en manque 21.", Y, kRaw},
  {"64", "O resultado é 64, pois 8 vezes 8 dá 64 e sobram 3.", Y, kRaw},
  // --- an approximation is a gloss of the exact value, unless a name precedes it ---
  {"\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{2}}{2} \\approx 0.707", Y, kAny},
  {"\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{3}}{2} \\approx 0.866", N, kAny},
  {"2\\pi", "2\\pi \\approx 6.28", Y, kAny}, {"14", "n \\approx 14", Y, kAny},
  {"14", "n \\approx 15", N, kAny}, {"\\frac{2}{9}", "p = \\frac{2}{9} \\approx 0.22", Y, kAny},
  {"\\sqrt{5}", "√5 ≈ 2.236", Y, kAny}, {"\\sqrt{6}", "√5 ≈ 2.236", N, kAny},
  // --- number formats: thin-space thousands, decimal commas after 0, pairs in brackets ---
  {"22222222200", "22,\\! 222,\\! 222,\\! 200", Y, kAny}, {"4096", "4,\\!096", Y, kAny},
  {"4096", "4,\\!097", N, kAny}, {"0.375", "0,375", Y, kAny}, {"0,25", "0.25", Y, kAny},
  {"0,25", "25", N, kAny}, {"(15,240)", "(15, 240)", Y, kAny}, {"(15,240)", "15240", N, kAny},
  {"21,305", "21305", Y, kAny}, {"31{,}415", "31415", Y, kAny}, {"31 {, }415", "31415", Y, kAny},
  {"31 {, }415", "31416", N, kAny}, {"45", "45minutes", Y, kAny}, {"12", "12hours", Y, kAny},
  {"13", "12hours", N, kAny}, {"\\frac{1}{4}", "(\\frac{1}{4}) 公斤", Y, kAny},
  // digits inside a name are no number
  {"3", "Product code ZK3P.", N, kRaw}, {"7", "Use the CO2 sensor 7 times.", Y, kRaw},
  // --- matrix arithmetic on written matrices ---
  {"\\begin{pmatrix}4 & 1 \\\\ 0 & 5\\end{pmatrix}",
   "The sum is $\\begin{pmatrix}3 & 1 \\\\ 2 & 2\\end{pmatrix} + \\begin{pmatrix}1 & 0 \\\\ -2 & 3\\end{pmatrix}$", Y, kRaw},
  {"\\begin{pmatrix}4 & 1 \\\\ 0 & 5\\end{pmatrix}",
   "The sum is $\\begin{pmatrix}3 & 1 \\\\ 2 & 2\\end{pmatrix} - \\begin{pmatrix}1 & 0 \\\\ -2 & 3\\end{pmatrix}$", N, kRaw},
  {"\\begin{pmatrix}2 & 1 \\\\ 4 & 3\\end{pmatrix}",
   "$\\begin{pmatrix}0 & 1 \\\\ 1 & 0\\end{pmatrix} \\begin{pmatrix}4 & 3 \\\\ 2 & 1\\end{pmatrix}$", Y, kRaw},
  {"\\begin{pmatrix}4 & 3 \\\\ 2 & 1\\end{pmatrix}",
   "$\\begin{pmatrix}0 & 1 \\\\ 1 & 0\\end{pmatrix} \\begin{pmatrix}4 & 3 \\\\ 2 & 1\\end{pmatrix}$", N, kRaw},
  {"\\begin{pmatrix}6 \\\\ -3\\end{pmatrix}", "3\\begin{pmatrix}2 \\\\ -1\\end{pmatrix}", Y, kAny},
  {"\\begin{pmatrix}6 \\\\ -3\\end{pmatrix}", "3\\begin{pmatrix}2 \\\\ 1\\end{pmatrix}", N, kAny},
  {"\\begin{pmatrix}1 & 2\\end{pmatrix}", "\\begin{pmatrix}1 & 2\\end{pmatrix} + \\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", N, kAny},
  // --- clock times: seconds ":00" and a.m./p.m. read as a 24-hour time ---
  {"18:05", "6:05 \\text{ p.m.}", Y, kAny}, {"18:05", "18:05:00", Y, kAny},
  {"18:05", "6:05 \\text{ a.m.}", N, kAny}, {"00:40", "12:40 AM", Y, kAny},
  {"18:05", "18:05:30", N, kAny}, {"9:15", "09:15", Y, kAny},
  // --- plain braces group a list; a backslashed brace makes a set ---
  {"(2,9)", "{2,9}", Y, kAny}, {"(2,9)", "{9,2}", N, kAny}, {"\\{2, 9\\}", "(2, 9)", N, kAny},
  // --- choice letters: not when the letter is a term of an expression; option golds ---
  {"D", "\\mathrm{D}+1", N, kAny}, {"D", "**D**", Y, kAny}, {"B Bertrand", "B", Y, kAny},
  {"B Bertrand", "C", N, kAny}, {"The answer is\nD Daphne", "D", Y, kAny},
  {"The answer is\nD Daphne", "A", N, kAny},
  // --- a box of prose is read as a completion: its anchor, else the value it ends with ---
  {"42", "The final answer is $\\boxed{we add 40 and 2, which gives 42 marbles}$.", Y, kRaw},
  {"41", "The final answer is $\\boxed{we add 40 and 2, which gives 42 marbles}$.", N, kRaw},
  {"D", "\\boxed{It cannot be B since the sum is odd, so it must be D}", Y, kRaw},
  {"B", "\\boxed{It cannot be B since the sum is odd, so it must be D}", N, kRaw},
  {"15", "\\boxed{Antwort: 15 Äpfel, nicht 12}", Y, kRaw}, {"12", "\\boxed{Antwort: 15 Äpfel, nicht 12}", N, kRaw},
  {"250", "\\boxed{总共需要 5 × 50 = 250 元。}", Y, kRaw}, {"50", "\\boxed{总共需要 5 × 50 = 250 元。}", N, kRaw},
  {"8", "\\boxed{The largest value is 8.}", Y, kRaw},
  {"E", "\\boxed{The answer is surely E, as it cannot be C or D}", Y, kRaw},
  {"D", "\\boxed{The answer is surely E, as it cannot be C or D}", N, kRaw},
  {"\\frac{1}{2}", "\\boxed{so the ratio comes to $\\frac{1}{2}$ in the end}", Y, kRaw},
  {"21", "\\boxed{Final answer: the count is 21.}", Y, kRaw},
  // --- unanchored: a number after the last span wins over a formula, not over a value ---
  {"12", "Each divisor $n$ gives a step $d = \\frac{60}{n}$, so there are 12 such sequences.", Y, kRaw},
  {"11", "Each divisor $n$ gives a step $d = \\frac{60}{n}$, so there are 12 such sequences.", N, kRaw},
  {"4", "Thus $x = 4$ (from step 2).", Y, kRaw}, {"2", "Thus $x = 4$ (from step 2).", N, kRaw},
  // --- an anchor after the last box is tried first ---
  {"1250", "so each costs \\boxed{50}, and 25 of them cost 1250. The final answer is 1250.", Y, kRaw},
  {"50", "so each costs \\boxed{50}, and 25 of them cost 1250. The final answer is 1250.", N, kRaw},
  {"50", "The final answer is 1250? No: each costs \\boxed{50}.", Y, kRaw},
};
// clang-format on

TEST(MathSuiteKinds, BoxedPredictions) { run_suite(kKinds, true, "math suite kinds"); }

TEST(MathSuiteKinds, RawCompletions) { run_suite(kKinds, false, "math suite kinds"); }

}  // namespace
}  // namespace aha::rewards
