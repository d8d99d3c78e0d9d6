// Table-driven agreement test of the whole math reward pipeline (gold extraction, candidate
// extraction, equivalence) on answers of the kinds public verifier suites judge: extraction
// without \boxed in several languages, text in the box, number formats, approximations,
// structures, labelled equations, symbolic expressions, reasoning sections. Every prediction
// is fed both as "The final answer is $\boxed{PRED}$." and as a raw completion.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "aha/core/config.h"
#include "aha/rewards/math.h"
#include "aha/rewards/reward.h"

namespace aha::rewards {
namespace {

enum Mode { kAny, kRaw, kBoxed };  // which wrappings a case is fed in
constexpr bool Y = true;
constexpr bool N = false;

struct SuiteCase {
  const char* gold;
  const char* pred;
  bool equal;
  Mode mode;
};

// clang-format off
const SuiteCase kSuite[] = {
  // --- extraction without \boxed: English anchors and prose ---
  {"79", "The candle loses 21 g, so the answer is 79 g.", Y, kAny},
  {"79", "So the answer is 79 grams of wax.", Y, kAny}, {"80", "so the answer is 79 g.", N, kAny},
  {"12", "Final answer: 12", Y, kAny}, {"12", "**Final Answer:** 12 apples", Y, kAny},
  {"13", "Final answer: 12", N, kAny},
  {"\\frac{3}{4}", "The final answer is $\\frac{3}{4}$. I hope it is correct.", Y, kRaw},
  {"0.75", "The final answer is $\\frac{3}{4}$. I hope it is correct.", Y, kRaw},
  {"\\frac{2}{3}", "The final answer is $\\frac{3}{4}$. I hope it is correct.", N, kRaw},
  {"5", "Adding them gives 2 + 3 = 5.", Y, kRaw}, {"6", "Adding them gives 2 + 3 = 5.", N, kRaw},
  {"42", "After simplifying, we find that the total is 42.", Y, kRaw},
  {"41", "After simplifying, we find that the total is 42.", N, kRaw},
  {"18", "Janet has 16 - 3 - 4 = 9 eggs left and sells them for $2 each, earning $18 every day.", Y, kRaw},
  {"\\frac{1}{2}", "First $x = 2$, then the probability is $\\frac{1}{2}$", Y, kRaw},
  {"\\frac{1}{3}", "First $x = 2$, then the probability is $\\frac{1}{2}$", N, kRaw},
  {"3", "The roots satisfy \\[x = 3\\]", Y, kRaw},
  {"\\sqrt{2}", "Hence the length is \\(\\sqrt{2}\\).", Y, kRaw},
  {"\\sqrt{3}", "Hence the length is \\(\\sqrt{2}\\).", N, kRaw},
  {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "The product is\n$$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$$", Y, kRaw},
  {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "The product is\n$$\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}$$", N, kRaw},
  {"2, 5", "The solutions are $x = 2$ and $x = 5$.", Y, kRaw},
  {"2, 5", "The solutions are $x = 2$ and $x = 6$.", N, kRaw},
  {"-1, 4", "We get $-1$, $4$", Y, kRaw}, {"1000", "The answer is: 1,000", Y, kAny},
  {"1000", "The answer is: 1,001", N, kAny}, {"7", "Answer: 7", Y, kAny},
  {"7", "answer: seven, i.e. 7", Y, kRaw}, {"250", "Therefore, she spent $250 in total.", Y, kRaw},
  {"25", "Therefore, she spent $250 in total.", N, kRaw},
  {"3.5", "The average speed is 3.5 km/h", Y, kRaw}, {"64", "#### 64", Y, kAny},
  {"64", "She pays 8 * 8 = 64 dollars.\n#### 64", Y, kRaw},
  {"65", "She pays 8 * 8 = 64 dollars.\n#### 64", N, kRaw},
  // --- extraction in other languages ---
  {"300", "答案是 300 分钟", Y, kAny}, {"300", "所以答案是300分钟。", Y, kAny}, {"301", "答案是 300 分钟", N, kAny},
  {"4000", "答案：4000千克", Y, kAny}, {"12", "答：小明一共有12个苹果。", Y, kAny},
  {"79", "donc il reste 79 g de cire.", Y, kRaw}, {"78", "donc il reste 79 g de cire.", N, kRaw},
  {"15", "La réponse est 15.", Y, kAny},
  {"\\frac{1}{4}", "La réponse finale est $\\frac{1}{4}$.", Y, kRaw},
  {"16", "La réponse est 15.", N, kAny}, {"24", "Die Antwort ist 24.", Y, kAny},
  {"24", "Antwort: 24 Euro", Y, kAny}, {"25", "Die Antwort ist 24.", N, kAny},
  {"9", "La respuesta es 9.", Y, kAny}, {"9", "Respuesta: 9 manzanas", Y, kAny},
  {"8", "La respuesta es 9.", N, kAny}, {"36", "Ответ: 36", Y, kAny},
  {"36", "Итак, ответ: 36 рублей.", Y, kAny}, {"35", "Ответ: 36", N, kAny},
  {"5", "答えは 5 です。", Y, kAny}, {"5", "よって、答えは5個です。", Y, kAny}, {"6", "答えは 5 です。", N, kAny},
  {"120", "A resposta é 120.", Y, kAny}, {"2.5", "La risposta è 2,5", Y, kAny},
  // --- multiple choice ---
  {"B", "Answer: (B)", Y, kAny}, {"B", "Answer: (C)", N, kAny},
  {"(B)", "The correct option is B.", Y, kRaw},
  {"C", "The answer is C because the others fail.", Y, kAny},
  {"C", "The answer is D because the others fail.", N, kAny}, {"B", "B。不是 A", Y, kAny},
  {"A", "B。不是 A", N, kAny}, {"D", "答案是 D", Y, kAny}, {"\\text{(D)}", "D", Y, kAny},
  {"A", "(A)", Y, kAny}, {"E", "\\textbf{(E)}", Y, kAny}, {"E", "\\textbf{(C)}", N, kAny},
  // --- text inside the box ---
  {"9", "Answer: 9", Y, kAny}, {"11", "x = 5+5+1 = 11", Y, kAny},
  {"12", "x = 5+5+1 = 11", N, kAny}, {"4000", "地块面积 = 72000 / 18 = 4000千克", Y, kAny},
  {"4500", "地块面积 = 72000 / 18 = 4000千克", N, kAny}, {"20", "\\text{Total} = 20", Y, kAny},
  {"20", "\\text{the number of apples is } 20", Y, kBoxed}, {"7", "7 \\text{ cats}", Y, kAny},
  {"7", "8 \\text{ cats}", N, kAny},
  // --- gold given as a solution or with $ ---
  {"The area is $\\boxed{12\\pi}$ square units.", "12\\pi", Y, kAny},
  {"The area is $\\boxed{12\\pi}$ square units.", "6\\pi", N, kAny},
  {"$\\frac{5}{8}$", "0.625", Y, kAny}, {"$\\frac{5}{8}$", "0.6", N, kAny},
  {"\\(2\\sqrt{3}\\)", "\\sqrt{12}", Y, kAny},
  {"Each box holds 6 eggs, so 4 boxes hold 24 eggs.\n#### 24", "24", Y, kAny},
  {"We have 3 + 4 = 7. The answer is 7.", "7", Y, kAny},
  {"We have 3 + 4 = 7. The answer is 7.", "8", N, kAny}, {"$$x = 4$$", "4", Y, kAny},
  {"The answer is $-\\frac{1}{2}$.", "-0.5", Y, kAny},
  // --- number formats ---
  {"1000.99", "1000,99", Y, kAny}, {"1000.99", "1.000,99", N, kAny},
  {"1000.99", "1,000.99", Y, kAny}, {"1000.99", "1,000.99\xE2\x82\xAC", Y, kAny},
  {"1000.99", "\xE2\x82\xAC" "1,000.99", Y, kAny}, {"1000.99", "1,000.98", N, kAny},
  {"2500", "\\$2,500", Y, kAny}, {"2500", "2 500", Y, kAny}, {"12.5", "12,5", Y, kAny},
  {"12.5", "12,6", N, kAny}, {"3.75", "\xC2\xA3" "3.75", Y, kAny},
  {"300", "300\xE5\x88\x86\xE9\x92\x9F", Y, kAny},
  {"300", "300 \xE5\x88\x86\xE9\x92\x9F", Y, kAny},
  {"4000", "4000\xE5\x8D\x83\xE5\x85\x8B", Y, kAny},
  {"4000", "400\xE5\x8D\x83\xE5\x85\x8B", N, kAny}, {"25\\%", "25%", Y, kAny},
  {"25\\%", "0.25", Y, kAny}, {"25\\%", "25 percent", Y, kAny}, {"25", "25\\%", Y, kAny},
  {"25\\%", "2.5\\%", N, kAny}, {"12.5\\%", "12.5%", Y, kAny}, {"0.045", "4.5\\%", Y, kAny},
  {"150000", "1.5 \\times 10^5", Y, kAny}, {"150000", "1.5e5", Y, kAny},
  {"150000", "1.5E+05", Y, kAny}, {"150000", "1.5 \\cdot 10^{5}", Y, kAny},
  {"0.0003", "3 \\times 10^{-4}", Y, kAny}, {"0.0003", "3 \\times 10^{-3}", N, kAny},
  {"6.0\\times10^{23}", "6 \\times 10^{23}", Y, kAny}, {"2000", "2\\times10\xC2\xB3", Y, kAny},
  {"\\frac{7}{9}", "\\dfrac{7}{9}", Y, kAny}, {"\\frac{7}{9}", "\\tfrac{7}{9}", Y, kAny},
  {"\\frac{7}{9}", "\\dfrac79", Y, kAny}, {"\\frac{7}{9}", "\\dfrac{9}{7}", N, kAny},
  {"\\frac{7}{9}", "7/9", Y, kAny}, {"10000", "10\\!000", Y, kAny}, {"10000", "10\\,000", Y, kAny},
  {"1234567", "1\\,234\\,567", Y, kAny}, {"\\sqrt{5}", "\\\\sqrt{5}", Y, kAny},
  {"\\frac{\\sqrt{5}}{2}", "\\\\frac{\\\\sqrt{5}}{2}", Y, kAny},
  {"\\frac{\\sqrt{5}}{2}", "\\\\frac{\\\\sqrt{5}}{3}", N, kAny},
  {"(1, 2)", "\\left( 1, 2 \\right)", Y, kAny}, {"[0, 1]", "\\left[ 0, 1 \\right]", Y, kAny},
  {"\\frac{1}{2}", "\\left(\\frac{1}{2}\\right)", Y, kAny}, {"90", "90^\\circ", Y, kAny},
  {"90^\\circ", "90", Y, kAny}, {"90^{\\circ}", "90\xC2\xB0", Y, kAny},
  {"45^\\circ", "90^\\circ", N, kAny}, {"4210_7", "4210_{7}", Y, kAny},
  {"4210_{7}", "4210_7", Y, kAny}, {"4210_7", "4211_7", N, kAny}, {"101_2", "101_{2}", Y, kAny},
  {"-7", "\xE2\x88\x92" "7", Y, kAny}, {"-7", "7", N, kAny}, {"0.5", ".5", Y, kAny},
  {"5", "5.0", Y, kAny}, {"5", "05", Y, kAny}, {"5", "5.01", N, kAny},
  {"1000000", "10^6", Y, kAny}, {"1000000", "1 000 000", Y, kAny}, {"3", "\\mathbf{3}", Y, kAny},
  {"20", "\\$20.00", Y, kAny}, {"20", "20 dollars", Y, kAny}, {"20", "21 dollars", N, kAny},
  {"8", "8 m", Y, kAny}, {"8", "8 \\text{m}^2", Y, kAny}, {"8", "8 \\mathrm{cm}", Y, kAny},
  {"45", "45 minutes", Y, kAny},
  // --- approximate answers against exact golds ---
  {"(\\frac35, \\frac83]", "(0.6, 2.6667]", Y, kAny},
  {"(\\frac35, \\frac83]", "(0.6, 2.6]", N, kAny},
  {"(\\frac35, \\frac83]", "[0.6, 2.6667]", N, kAny}, {"\\sqrt{2}", "1.414", Y, kAny},
  {"\\sqrt{2}", "1.4142", Y, kAny}, {"\\sqrt{2}", "1.415", N, kAny},
  {"\\frac{1}{3}", "0.333333", Y, kAny}, {"\\frac{1}{3}", "0.3333", Y, kAny},
  {"\\frac{1}{3}", "0.3", N, kAny}, {"\\frac{1}{3}", "0.334", N, kAny},
  {"\\frac{2}{3}", "0.667", Y, kAny}, {"\\frac{2}{3}", "0.666", N, kAny},
  {"\\pi", "3.1416", Y, kAny}, {"\\pi", "3.1415", N, kAny}, {"\\pi", "3.14", N, kAny},
  {"e", "2.71828", Y, kAny}, {"2\\pi", "6.283", Y, kAny}, {"2\\pi", "6.28", N, kAny},
  {"\\frac{22}{7}", "3.142857", Y, kAny}, {"x + \\sqrt{2} i", "x + 1.414i", Y, kAny},
  {"x + \\sqrt{2} i", "x + 1.5i", N, kAny}, {"\\frac{\\sqrt{3}}{2}", "0.866", Y, kAny},
  {"\\frac{\\sqrt{3}}{2}", "0.87", N, kAny}, {"\\ln 2", "0.6931", Y, kAny},
  {"1.5", "1.50", Y, kAny}, {"0.333", "0.3333", N, kAny}, {"0.1", "0.1000001", Y, kAny},
  {"0.1", "0.10001", N, kAny}, {"12.3456789", "12.345679", Y, kAny},
  {"12.3456789", "12.3457", N, kAny}, {"12.3456789", "12.3458", N, kAny},
  {"(1.4142, 1.7321)", "(\\sqrt{2}, \\sqrt{3})", Y, kAny},
  {"(1.4142, 1.7321)", "(\\sqrt{3}, \\sqrt{2})", N, kAny},
  // --- unordered solution lists ---
  {"(7,11), (11,7)", "(11,7) or (7,11)", Y, kAny},
  {"(7,11), (11,7)", "(11,7) \\text{ or } (7,11)", Y, kAny},
  {"(7,11), (11,7)", "(11,7), (7,12)", N, kAny}, {"(7,11), (11,7)", "(7,11)", N, kAny},
  {"-3, 2", "2 \\text{ or } -3", Y, kAny}, {"-3, 2", "x = 2 \\quad x = -3", Y, kAny},
  {"-3, 2", "x_1 = -3, x_2 = 2", Y, kAny}, {"-3, 2", "x_1 = -3, x_2 = 3", N, kAny},
  {"-3, 2", "2 and -3", Y, kAny}, {"-3, 2", "2", N, kAny}, {"1, 2, 3", "3, 2, 1", Y, kAny},
  {"1, 2, 3", "\\{1, 2, 3\\}", Y, kAny}, {"1, 2, 3", "1, 2, 4", N, kAny},
  {"\\pm 3", "3, -3", Y, kAny}, {"\\pm 3", "x = \\pm 3", Y, kAny}, {"\\pm 3", "3", N, kAny},
  {"2 \\pm \\sqrt{3}", "2 + \\sqrt{3}, 2 - \\sqrt{3}", Y, kAny},
  {"2 \\pm \\sqrt{3}", "2 + \\sqrt{3}", N, kAny}, {"x = 1 \\text{ or } x = -1", "-1, 1", Y, kAny},
  {"a=2, b=5", "a = 2, b = 5", Y, kAny}, {"a=2, b=5", "b = 5, a = 2", Y, kAny},
  {"a=2, b=5", "a = 5, b = 2", N, kAny},
  // --- tuples, sets, intervals, unions ---
  {"(3, -1)", "(3,-1)", Y, kAny}, {"(3, -1)", "(-1, 3)", N, kAny},
  {"(3, -1, 2)", "\\left(3, -1, 2\\right)", Y, kAny}, {"(3, -1, 2)", "(3, -1)", N, kAny},
  {"\\{2, 4, 6\\}", "\\{6, 4, 2\\}", Y, kAny}, {"\\{2, 4, 6\\}", "\\{2, 4\\}", N, kAny},
  {"\\{2, 4, 6\\}", "\\left\\{ 4, 2, 6 \\right\\}", Y, kAny}, {"[2, 5)", "[2,5)", Y, kAny},
  {"[2, 5)", "(2, 5]", N, kAny}, {"[2, 5)", "[2, 5]", N, kAny},
  {"(-\\infty, 0) \\cup (1, \\infty)", "(1, \\infty) \\cup (-\\infty, 0)", Y, kAny},
  {"(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty, 0] \\cup (1, \\infty)", N, kAny},
  {"(-\\infty, -2] \\cup [3, \\infty)", "(-\\infty,-2]\\cup[3,\\infty)", Y, kAny},
  {"(-\\infty, 5)", "x < 5", Y, kAny}, {"(-\\infty, 5)", "x \\leq 5", N, kAny},
  {"[-1, 4]", "-1 \\le x \\le 4", Y, kAny}, {"[-1, 4]", "-1 < x \\le 4", N, kAny},
  {"(0, \\infty)", "x > 0", Y, kAny}, {"(0, \\infty)", "(0, \\infty)", Y, kAny},
  {"\\emptyset", "\\varnothing", Y, kAny}, {"\\emptyset", "\\{0\\}", N, kAny},
  // --- matrices ---
  {"\\begin{pmatrix} 2 & 0 \\\\ 0 & 3 \\end{pmatrix}", "\\begin{bmatrix} 2 & 0 \\\\ 0 & 3 \\end{bmatrix}", Y, kAny},
  {"\\begin{pmatrix} 2 & 0 \\\\ 0 & 3 \\end{pmatrix}", "\\left(\\begin{array}{cc} 2 & 0 \\\\ 0 & 3 \\end{array}\\right)", Y, kAny},
  {"\\begin{pmatrix} 2 & 0 \\\\ 0 & 3 \\end{pmatrix}", "\\begin{pmatrix} 2 & 0 \\\\ 0 & -3 \\end{pmatrix}", N, kAny},
  {"\\begin{pmatrix} 2 & 0 \\\\ 0 & 3 \\end{pmatrix}", "\\begin{pmatrix} 2 & 0 & 0 & 3 \\end{pmatrix}", N, kAny},
  {"\\begin{pmatrix} 1/2 \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ -1 \\end{pmatrix}", Y, kAny},
  {"\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}", "(1, 2, 3)", Y, kAny},
  {"\\begin{pmatrix} 1 \\\\ 2 \\\\ 3 \\end{pmatrix}", "(1, 3, 2)", N, kAny},
  {"\\begin{pmatrix} \\frac{1}{\\sqrt{2}} & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix} \\frac{\\sqrt{2}}{2} & 0 \\\\ 0 & 1 \\end{pmatrix}", Y, kAny},
  {"\\begin{bmatrix} 4 & -2 \\end{bmatrix}", "\\begin{bmatrix} 4 & 2 \\end{bmatrix}", N, kAny},
  // --- labelled equations and ratios ---
  {"\\frac{1}{3}", "x = 1/3", Y, kAny}, {"\\frac{1}{3}", "x = \\frac{1}{3}", Y, kAny},
  {"\\frac{1}{3}", "x = 3", N, kAny}, {"11:21", "V_1:V_2 = 11:21", Y, kAny},
  {"11:21", "V_1 : V_2 = 21 : 11", N, kAny}, {"3:4", "3 : 4", Y, kAny}, {"3:4", "6:8", Y, kAny},
  {"3:4", "4:3", N, kAny}, {"y = 3x - 2", "y=3x-2", Y, kAny},
  {"y = 3x - 2", "3x - y = 2", Y, kAny}, {"y = 3x - 2", "y = 3x + 2", N, kAny},
  {"k = 6", "6", Y, kAny}, {"6", "k = 6", Y, kAny}, {"6", "k = 7", N, kAny},
  {"f(x) = x^2 + 1", "x^2 + 1", Y, kAny}, {"x^2 + 1", "f(x) = x^2 + 1", Y, kAny},
  {"x^2 + 1", "f(x) = x^2 - 1", N, kAny}, {"m = 2, n = 3", "(2, 3)", Y, kAny},
  // --- inequalities ---
  {"x \\ge 3", "x \\geq 3", Y, kAny}, {"x \\ge 3", "3 \\le x", Y, kAny},
  {"x \\ge 3", "x > 3", N, kAny}, {"x < -1", "-1 > x", Y, kAny}, {"x < -1", "x < 1", N, kAny},
  // --- symbolic equivalence ---
  {"\\cos x", "\\sin(90^\\circ - x)", Y, kAny}, {"\\cos x", "\\sin(90^\\circ + x)", Y, kAny},
  {"\\cos x", "\\sin(x)", N, kAny}, {"\\sin 30^\\circ", "\\frac{1}{2}", Y, kAny},
  {"\\cos 60^{\\circ}", "\\frac{1}{2}", Y, kAny}, {"\\tan 45^\\circ", "2", N, kAny},
  {"x + 1", "\\frac{x^2-1}{x-1}", Y, kAny}, {"x - 1", "\\frac{x^2-1}{x+1}", Y, kAny},
  {"x + 1", "\\frac{x^2+1}{x-1}", N, kAny}, {"(a+b)^2", "a^2 + 2ab + b^2", Y, kAny},
  {"(a+b)^2", "a^2 + b^2", N, kAny}, {"(a-b)^3", "a^3 - 3a^2b + 3ab^2 - b^3", Y, kAny},
  {"(a-b)^3", "a^3 - 3a^2b - 3ab^2 - b^3", N, kAny},
  {"\\frac{1}{x(x+1)}", "\\frac{1}{x} - \\frac{1}{x+1}", Y, kAny},
  {"\\frac{1}{x(x+1)}", "\\frac{1}{x} + \\frac{1}{x+1}", N, kAny},
  {"2\\sin x \\cos x", "\\sin 2x", Y, kAny}, {"\\cos^2 x - \\sin^2 x", "\\cos(2x)", Y, kAny},
  {"\\cos^2 x - \\sin^2 x", "\\sin(2x)", N, kAny}, {"e^{2\\ln x}", "x^2", Y, kAny},
  {"\\ln(xy)", "\\ln x + \\ln y", Y, kAny}, {"\\ln(xy)", "\\ln x \\cdot \\ln y", N, kAny},
  {"\\log_2 32", "5", Y, kAny}, {"\\log_3 81", "5", N, kAny},
  {"\\sqrt{x^2 + 2x + 1}", "|x + 1|", Y, kAny},
  {"\\frac{n(n+1)(2n+1)}{6}", "\\frac{2n^3 + 3n^2 + n}{6}", Y, kAny},
  {"\\frac{n(n+1)(2n+1)}{6}", "\\frac{n^3 + 3n^2 + n}{6}", N, kAny},
  {"\\frac{n(n-1)}{2}", "\\binom{n}{2}", Y, kAny}, {"2^{n+1} - 2", "2(2^n - 1)", Y, kAny},
  {"2^{n+1} - 2", "2^n - 1", N, kAny}, {"3^{2x}", "9^x", Y, kAny},
  {"\\frac{\\pi r^2 h}{3}", "\\frac{1}{3}\\pi r^2 h", Y, kAny},
  {"\\frac{\\pi r^2 h}{3}", "\\pi r^2 h", N, kAny}, {"\\sqrt{8}", "2\\sqrt{2}", Y, kAny},
  {"\\sqrt{8}", "4\\sqrt{2}", N, kAny},
  {"\\frac{\\sqrt{6} + \\sqrt{2}}{4}", "\\cos 15^\\circ", Y, kAny},
  {"\\frac{\\sqrt{6} - \\sqrt{2}}{4}", "\\cos 15^\\circ", N, kAny},
  {"\\frac{3 + \\sqrt{5}}{2}", "\\left(\\frac{1 + \\sqrt{5}}{2}\\right)^2", Y, kAny},
  {"10\\sqrt{3}", "\\sqrt{300}", Y, kAny}, {"\\frac{5}{\\sqrt{5}}", "\\sqrt{5}", Y, kAny},
  {"\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}", Y, kAny},
  {"\\frac{1}{\\sqrt{3}}", "\\sqrt{3}", N, kAny}, {"4\\pi", "4 \\pi", Y, kAny},
  {"\\frac{4\\pi}{3}", "\\frac{4}{3}\\pi", Y, kAny},
  {"\\frac{4\\pi}{3}", "\\frac{3\\pi}{4}", N, kAny}, {"x^2 y", "y x^2", Y, kAny},
  {"x^2 y", "x y^2", N, kAny}, {"t^2 - 5t + 6", "(t - 2)(t - 3)", Y, kAny},
  {"t^2 - 5t + 6", "(t + 2)(t + 3)", N, kAny},
  {"\\frac{a}{b} + \\frac{c}{d}", "\\frac{ad + bc}{bd}", Y, kAny}, {"3x + 2y", "2y + 3x", Y, kAny},
  {"\\tan x", "\\frac{\\sin x}{\\cos x}", Y, kAny}, {"\\sec^2 x", "1 + \\tan^2 x", Y, kAny},
  {"\\sec^2 x", "1 - \\tan^2 x", N, kAny}, {"i^2", "-1", Y, kAny}, {"(1 + i)^2", "2i", Y, kAny},
  {"(1 + i)^2", "2", N, kAny}, {"3 + 4i", "3+4i", Y, kAny}, {"3 + 4i", "4i + 3", Y, kAny},
  {"3 + 4i", "3 - 4i", N, kAny}, {"\\frac{1}{1 + i}", "\\frac{1 - i}{2}", Y, kAny},
  {"\\sqrt{-4}", "2i", Y, kAny}, {"\\frac{x}{2}", "0.5x", Y, kAny},
  {"\\frac{x}{3}", "0.33x", N, kAny}, {"\\frac{x+y}{2}", "\\frac{y+x}{2}", Y, kAny},
  {"100!", "100!", Y, kAny}, {"\\frac{10!}{2! \\, 8!}", "45", Y, kAny},
  {"\\binom{8}{3}", "56", Y, kAny}, {"\\binom{8}{3}", "336", N, kAny},
  // --- reasoning sections ---
  {"6", "<think>maybe the answer is 6</think> The answer is 7.", N, kRaw},
  {"7", "<think>maybe the answer is 6</think> The answer is 7.", Y, kRaw},
  {"6", "<think>so it is \\boxed{6}</think> I am not sure.", N, kRaw},
  {"6", "<think>6 apples</think><answer>6</answer>", Y, kRaw},
  {"6", "Reasoning first. The answer is 6.", Y, kRaw},
  // --- everyday GSM8K-style answers ---
  {"18", "18", Y, kAny}, {"18", "\\$18", Y, kAny}, {"18", "18.00", Y, kAny},
  {"18", "18 dollars per day", Y, kAny}, {"18", "19", N, kAny}, {"18", "1.8", N, kAny},
  {"3", "3 hours", Y, kAny}, {"3", "three", N, kAny}, {"160", "160 km", Y, kAny},
  {"160", "16", N, kAny}, {"0.5", "1/2", Y, kAny}, {"0.5", "50\\%", Y, kAny},
  {"1200", "1,200", Y, kAny}, {"1200", "12,00", N, kAny}, {"75", "75%", Y, kAny},
  {"-4", "-4.0", Y, kAny}, {"-4", "4", N, kAny}, {"2.25", "9/4", Y, kAny},
  {"2.25", "2\\frac{1}{4}", Y, kAny}, {"2.25", "2\\frac{1}{2}", N, kAny},
  {"1/6", "0.1\\overline{6}", Y, kAny}, {"1/6", "0.16", N, kAny},
  // --- MATH-style answers ---
  {"\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", Y, kAny}, {"\\frac{9}{2}", "4.5", Y, kAny},
  {"\\frac{9}{2}", "4\\frac{1}{2}", Y, kAny}, {"\\frac{9}{2}", "\\frac{2}{9}", N, kAny},
  {"-\\frac{5}{12}", "\\frac{-5}{12}", Y, kAny}, {"-\\frac{5}{12}", "\\frac{5}{12}", N, kAny},
  {"2\\sqrt{10}", "\\sqrt{40}", Y, kAny}, {"2\\sqrt{10}", "\\sqrt{20}", N, kAny},
  {"\\frac{\\pi}{6}", "30^\\circ", N, kAny}, {"\\text{Wednesday}", "Wednesday", Y, kAny},
  {"\\text{Wednesday}", "Thursday", N, kAny}, {"\\text{even}", "\\text{Even}", Y, kAny},
  {"\\text{neither}", "\\text{odd}", N, kAny}, {"(2, -3)", "(2,-3)", Y, kAny},
  {"(2, -3)", "(-3, 2)", N, kAny}, {"\\left( \\frac{1}{2}, 4 \\right)", "(0.5, 4)", Y, kAny},
  {"(-2, 1) \\cup (3, \\infty)", "(-2,1)\\cup(3,\\infty)", Y, kAny},
  {"x^3 - 2x + 1", "1 - 2x + x^3", Y, kAny}, {"x^3 - 2x + 1", "x^3 + 2x + 1", N, kAny},
  {"\\$1.20", "1.2", Y, kAny}, {"\\$1.20", "1.02", N, kAny}, {"5\\sqrt{2}", "\\sqrt{50}", Y, kAny},
  {"5\\sqrt{2}", "7.071", Y, kAny}, {"5\\sqrt{2}", "7.07", N, kAny},
  {"\\infty", "\\infty", Y, kAny}, {"\\infty", "-\\infty", N, kAny}, {"0", "0.0", Y, kAny},
  {"0", "-0", Y, kAny}, {"0", "0.001", N, kAny}, {"1", "\\frac{3}{3}", Y, kAny},
  {"1", "1^{100}", Y, kAny}, {"7", "\\sqrt{49}", Y, kAny}, {"7", "\\sqrt{48}", N, kAny},
  {"27", "3^3", Y, kAny}, {"27", "3^4", N, kAny}, {"\\frac{1}{8}", "2^{-3}", Y, kAny},
  {"\\frac{1}{8}", "2^{3}", N, kAny}, {"10", "\\binom{5}{2}", Y, kAny}, {"24", "4!", Y, kAny},
  {"24", "5!", N, kAny}, {"12", "|-12|", Y, kAny}, {"-12", "|-12|", N, kAny},
  {"3", "\\lfloor \\pi \\rfloor", Y, kAny}, {"4", "\\lceil \\pi \\rceil", Y, kAny},
  {"4", "\\lfloor \\pi \\rfloor", N, kAny},
  // --- near misses that must stay unequal ---
  {"12", "120", N, kAny}, {"12", "1.2", N, kAny}, {"12", "21", N, kAny},
  {"\\frac{1}{2}", "\\frac{1}{4}", N, kAny}, {"\\frac{1}{2}", "2", N, kAny},
  {"(1, 2)", "\\{1, 2\\}", N, kAny}, {"(1, 2)", "[1, 2]", N, kAny}, {"x^2", "2x", N, kAny},
  {"x^2", "x^3", N, kAny}, {"2x", "x + 2", N, kAny}, {"\\sqrt{2}", "2", N, kAny},
  {"\\sqrt{2}", "\\sqrt{3}", N, kAny}, {"\\pi", "\\frac{\\pi}{2}", N, kAny}, {"-1", "1", N, kAny},
  {"100", "1000", N, kAny}, {"1,2", "12", N, kAny}, {"1.5", "15", N, kAny},
  {"0.05", "0.5", N, kAny}, {"5\\%", "0.5", N, kAny}, {"y = 2x", "y = x/2", N, kAny},
  {"a+b", "ab", N, kAny}, {"\\{1\\}", "\\{1, 2\\}", N, kAny}, {"3^{10}", "3^{11}", N, kAny},
  {"2^{100}", "2^{100} + 1", N, kAny}, {"10^{-9}", "0", N, kAny},
  // --- a second batch: prose, anchors, choices, units, near misses ---
  {"1, 2", "The answers are \\boxed{1} and \\boxed{2}.", Y, kAny}, {"5", "**Answer**: 5", Y, kAny},
  {"5", "**Final Answer**: The value is 5", Y, kAny}, {"30", "\\angle ABC = 30^\\circ", Y, kAny},
  {"x^{1/3}", "\\sqrt[3]{x}", Y, kAny}, {"e^x", "\\exp(x)", Y, kAny},
  {"0.7071", "\\frac{\\sqrt{2}}{2}", Y, kAny}, {"\\frac{\\pi}{2}", "1.5708", Y, kAny},
  {"3.14", "3,14", Y, kAny}, {"120000", "1.2 × 10^5", Y, kAny},
  {"10", "10 \\mathrm{~cm}^2", Y, kAny}, {"-5", "-5 degrees", Y, kAny},
  {"\\text{(C)}", "C", Y, kAny}, {"\\text{(C)}", "The answer is (C).", Y, kAny},
  {"C", "I choose option C.", Y, kAny}, {"B", "**B**", Y, kAny},
  {"B", "The correct answer is **B**.", Y, kAny},
  {"\\frac{1}{2}", "The probability is 1/2.", Y, kAny},
  {"\\frac{1}{2}", "The probability is 1/3.", N, kAny}, {"2", "x=2", Y, kAny},
  {"(-\\infty, 1]", "x \\le 1", Y, kAny}, {"x \\in [0, 2]", "[0,2]", Y, kAny},
  {"0.05", "5\\%", Y, kAny}, {"5%", "0.05", Y, kAny}, {"11", "11 \\text{ students}", Y, kAny},
  {"11", "eleven", N, kAny}, {"\\frac{3}{2}", "1\\frac{1}{2}", Y, kAny},
  {"\\frac{3}{2}", "1 \\frac{1}{2}", Y, kAny}, {"\\dfrac{14}{3}", "4\\dfrac{2}{3}", Y, kAny},
  {"2\\sqrt{2}", "2 \\sqrt 2", Y, kAny}, {"\\sqrt{2}/2", "\\frac{1}{\\sqrt2}", Y, kAny},
  {"1", "1.0", Y, kAny}, {"1", "0.999999", Y, kAny}, {"1", "0.9999", N, kAny},
  {"f(x)=2x+3", "2x+3", Y, kAny}, {"y=2x+3", "y = 2 x + 3", Y, kAny}, {"2x+3", "2x+4", N, kAny},
  {"\\begin{pmatrix}1\\\\0\\end{pmatrix}", "\\begin{pmatrix}1\\\\0\\end{pmatrix}", Y, kAny},
  {"\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", "I", N, kAny},
  {"\\left[\\begin{matrix}1 & 2\\\\3 & 4\\end{matrix}\\right]", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", Y, kAny},
  {"10", "The total cost is $\\$10$.", Y, kAny}, {"10", "It costs \\$10.", Y, kAny},
  {"2", "So we have $x=2$. Therefore the answer is $\\boxed{2}$", Y, kAny},
  {"\\infty", "\\infty", Y, kAny}, {"0", "There are no solutions, so the answer is 0.", Y, kAny},
  {"\\frac{5}{6}", "5/6", Y, kAny}, {"\\frac{5}{6}", "0.83", N, kAny},
  {"\\frac{5}{6}", "0.833", Y, kAny}, {"4\\pi", "12.566", Y, kAny}, {"4\\pi", "12.57", N, kAny},
  {"(2,3)", "x=2, y=3", Y, kAny}, {"(2,3)", "x=3, y=2", N, kAny},
  {"3\\sqrt{3}", "\\sqrt{27}", Y, kAny}, {"-\\frac{1}{2}", "-0.5", Y, kAny},
  {"1.5", "\\frac{3}{2}", Y, kAny}, {"\\text{No}", "no", Y, kAny}, {"\\text{No}", "yes", N, kAny},
  {"12", "12.", Y, kAny}, {"12", "$12$.", Y, kAny}, {"7", "There are 7 days in a week.", Y, kAny},
  {"1/4", "25%", Y, kAny}, {"  2", "2", Y, kAny},
  {"\\frac{1}{2}", "\\frac{1}{2}\\text{ cm}", Y, kAny}, {"80", "80\\%", Y, kAny},
  {"x^2+2x+1", "(x+1)^{2}", Y, kAny}, {"\\sin^2\\theta", "1-\\cos^2\\theta", Y, kAny},
  {"a^2-b^2", "(a-b)(a+b)", Y, kAny}, {"k=3", "k = 4", N, kAny}, {"3", "k = 4", N, kAny},
  {"\\frac{1}{2}", "Answer: $\\frac{1}{2}$", Y, kAny}, {"12", "答案为12", Y, kAny},
  {"12", "最终答案是 $12$。", Y, kAny}, {"12", "La respuesta final es 12.", Y, kAny},
  {"12", "Die endgültige Antwort ist 12.", Y, kAny}, {"12", "Ответ: 12 см.", Y, kAny},
  {"12", "Итак, получаем 12 см.", Y, kAny}, {"1000", "1.000", N, kAny}, {"1,000", "1000", Y, kAny},
  {"1 000", "1000", Y, kAny}, {"3.5", "3,5", Y, kAny}, {"1:2", "\\frac{1}{2}", Y, kAny},
  {"2:3", "2 : 3", Y, kAny}, {"50", "50^{\\circ}", Y, kAny},
  {"\\sin 60^\\circ", "\\frac{\\sqrt3}{2}", Y, kAny}, {"\\frac{\\pi}{3}", "60^\\circ", N, kAny},
  {"2", "The answer is 3, not 2.", N, kAny}, {"3", "The answer is 3, not 2.", Y, kAny},
  {"12", "We have 12 eggs but need 15. Answer: 15", N, kAny},
  {"15", "We have 12 eggs but need 15. Answer: 15", Y, kAny}, {"6", "<think>6</think>", N, kAny},
  {"\\frac{1}{2}", "\\frac{1}{3}", N, kAny}, {"1/2", "2/4", Y, kAny}, {"0.5", "0.05", N, kAny},
  {"x^2", "x^2 + 0", Y, kAny}, {"\\sqrt{2}", "\\sqrt{2}+0.0001", N, kAny},
  {"(1,2)", "(1,2,3)", N, kAny}, {"[1,2]", "[1,3]", N, kAny},
  {"\\{1,2\\}", "\\{1,2,2\\}", N, kAny}, {"x+y", "x-y", N, kAny}, {"2^{10}", "1024", Y, kAny},
  {"2^{10}", "1023", N, kAny}, {"\\frac{a+b}{2}", "\\frac{a}{2}+b", N, kAny},
  {"A", "The answer is B", N, kAny}, {"B", "(A)", N, kAny}, {"A", "a", Y, kAny},
  {"\\text{A}", "A", Y, kAny}, {"yes", "no", N, kAny}, {"\\text{True}", "True", Y, kAny},
  {"1", "\\frac{2}{2}", Y, kAny}, {"0", "\\sin(0)", Y, kAny}, {"\\log_2 8", "3", Y, kAny},
  {"\\ln e", "1", Y, kAny}, {"100", "10^2", Y, kAny}, {"101", "10^2", N, kAny},
  {"-\\frac{\\sqrt{3}}{2}", "\\cos(150^\\circ)", Y, kAny},
  {"\\frac{\\sqrt{3}}{2}", "\\cos(150^\\circ)", N, kAny}, {"2\\pi/3", "120^\\circ", N, kAny},
  {"3x", "x3", Y, kAny}, {"\\frac{x}{y}", "x/y", Y, kAny}, {"\\frac{x}{y}", "y/x", N, kAny},
  {"p", "q", N, kAny}, {"n^2", "n \\cdot n", Y, kAny},
  {"\\frac{1}{n+1}", "\\frac{1}{n}+1", N, kAny}, {"e", "e", Y, kAny},
  {"e^2", "e \\cdot e", Y, kAny}, {"2e", "e+e", Y, kAny}, {"9", "3^2", Y, kAny},
  {"24", "4!", Y, kAny}, {"0.1", "10\\%", Y, kAny}, {"0.1", "1\\%", N, kAny},
  {"1.5", "1 1/2", Y, kAny}, {"1.5", "11/2", N, kAny}, {"5", "five", N, kAny},
  {"\\frac{7}{2}", "3.5 \\text{ hours}", Y, kAny}, {"$18.00", "18", Y, kAny},
  {"18", "$18.00", Y, kAny}, {"3", "3.0", Y, kAny}, {"3", "3.00001", N, kAny},
  {"1000000", "1e6", Y, kAny}, {"1000000", "10^{6}", Y, kAny}, {"1000000", "1,000,000", Y, kAny},
  {"1000000", "100,000", N, kAny}, {"(0, 1)", "0 < x < 1", Y, kAny},
  {"(0, 1)", "0 \\le x < 1", N, kAny}, {"\\mathbb{R}", "(-\\infty, \\infty)", Y, kAny},
  {"x=3", "x = 3.0", Y, kAny}, {"x=3", "y = 3", N, kAny}, {"x = \\frac{1}{2}", "x = 0.5", Y, kAny},
  {"\\begin{pmatrix}3\\\\4\\end{pmatrix}", "\\begin{pmatrix}4\\\\3\\end{pmatrix}", N, kAny},
  {"(3, 4)", "\\langle 3, 4 \\rangle", Y, kAny}, {"\\overline{AB}", "AB", Y, kAny},
  {"4", "$x^2 = 16$, so $x = 4$", Y, kAny}, {"-4, 4", "$x^2 = 16$, so $x = \\pm 4$", Y, kAny},
  {"8", "In total, 5 + 3 = 8 cookies.", Y, kAny}, {"35", "Thus $\\$35$ is left.", Y, kAny},
  {"35", "Thus 35 dollars is left.", Y, kAny}, {"2", "There are two of them: 2.", Y, kAny},
  {"4", "The area is $4 \\text{ m}^2$.", Y, kAny}, {"4", "The area is 4 m^2.", Y, kAny},
  {"\\frac{1}{6}", "The chance is 1 in 6.", N, kAny}, {"60", "60 km/h", Y, kAny},
  {"60", "60 \\text{ km/h}", Y, kAny}, {"2:1", "2 to 1", N, kAny},
  // --- a third batch: suite-style raw completions, choices with values, complex units ---
  {"x = \\pm 2", "x^2 = 4", N, kAny}, {"1477", "4210_7", N, kAny}, {"22:42", "11:21", Y, kAny},
  {"2", "2:1", N, kAny}, {"\\frac{2}{1}", "2:1", Y, kAny}, {"1000", "1 km", N, kAny},
  {"\\{1,2\\}", "{1,2}", Y, kAny}, {"\\{1,2\\}", "{2, 1}", Y, kAny},
  {"\\frac12", "\\frac{1}{2}", Y, kAny}, {"0.5", ".5", Y, kAny}, {"\\sqrt2", "\\sqrt{2}", Y, kAny},
  {"5", "x=5", Y, kAny}, {"5\\%", "5", Y, kAny}, {"10", "10 \\text{ units}", Y, kAny},
  {"\\dfrac{3}{4}", "\\tfrac34", Y, kAny}, {"2\\pi", "6.283185", Y, kAny},
  {"30^\\circ", "\\frac{\\pi}{6}", N, kAny}, {"42", "Answer: 42", Y, kAny},
  {"42", "The final answer is 42", Y, kAny}, {"42", "The final answer is: 42", Y, kAny},
  {"42", "The final answer is $42$. I hope it is correct.", Y, kAny},
  {"42", "Final Answer: The final answer is $42$. I hope it is correct.", Y, kAny},
  {"\\frac{1}{2}", "We compute $\\frac{1}{4} + \\frac{1}{4} = \\frac{1}{2}$.", Y, kAny},
  {"\\frac{1}{2}", "We compute $\\frac{1}{4} + \\frac{1}{4} = \\frac{1}{3}$.", N, kAny},
  {"3", "\\[ a = 3 \\]", Y, kAny}, {"(1, 2)", "The point is $(1, 2)$.", Y, kAny},
  {"(1, 2)", "The point is $(2, 1)$.", N, kAny},
  {"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "$\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}$", Y, kAny},
  {"-2", "The slope is $-2$.", Y, kAny}, {"-2", "The slope is -2.", Y, kAny},
  {"-2", "The slope is 2.", N, kAny}, {"1/3", "$\\frac{1}{3}$", Y, kAny},
  {"1/3", "\\(\\frac{1}{3}\\)", Y, kAny}, {"x+1", "$x + 1$", Y, kAny}, {"12", "$\\$12$", Y, kAny},
  {"1", "\\boxed{1}", Y, kAny}, {"1", "$\\boxed{1}$", Y, kAny},
  {"1", "\\boxed{\\text{1}}", Y, kAny}, {"2, 3", "x \\in \\{2, 3\\}", Y, kAny},
  {"[2, 3]", "x \\in [2, 3]", Y, kAny}, {"\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt 3}{2}", Y, kAny},
  {"\\frac{\\sqrt{3}}{2}", "\\sqrt{3}/2", Y, kAny}, {"3\\sqrt{2}", "3\\sqrt2", Y, kAny},
  {"2^{3}", "8", Y, kAny}, {"1.5", "3/2", Y, kAny}, {"0.25", "1/4", Y, kAny},
  {"0.2", "1/4", N, kAny}, {"-1", "-1.0", Y, kAny}, {"6", "6.000", Y, kAny},
  {"10\\%", "0.1", Y, kAny}, {"\\frac{1}{10}", "10\\%", Y, kAny}, {"\\text{(B) } 5", "B", Y, kAny},
  {"(B)", "B", Y, kAny}, {"B", "(B) 5", Y, kAny}, {"x^2", "x**2", Y, kAny},
  {"\\pi/4", "\\frac{\\pi}{4}", Y, kAny}, {"\\pi/4", "0.7854", Y, kAny},
  {"\\pi/4", "0.785", Y, kAny}, {"\\pi/4", "0.78", N, kAny}, {"\\frac{1}{e}", "e^{-1}", Y, kAny},
  {"3", "three", N, kAny}, {"\\infty", "oo", N, kAny}, {"a", "A", Y, kAny},
  {"(x-1)^2", "x^2-2x+1", Y, kAny},
  {"\\frac{1}{2} + \\frac{\\sqrt{3}}{2} i", "\\frac{1 + i\\sqrt{3}}{2}", Y, kAny},
  {"1 - i", "1 + i", N, kAny}, {"2+3i", "2+3\\mathrm{i}", Y, kAny},
  {"\\sqrt{13}", "3.6056", Y, kAny}, {"5:2", "5/2", Y, kAny}, {"120", "The answer: 120", Y, kAny},
  {"5", "\\boxed{5}\\,\\text{cm}", Y, kAny}, {"5", "\\boxed{5 \\text{ cm}}", Y, kAny},
  {"\\{1,2\\}", "\\{1\\} \\cup \\{2\\}", Y, kAny}, {"\\{1,2\\}", "\\{1\\} \\cup \\{3\\}", N, kAny},
  {"(1,2) \\cup (3,4)", "(3,4) \\cup (1,2)", Y, kAny}, {"12", "정답은 12입니다.", Y, kAny},
  {"42", "Окончательный ответ: 42.", Y, kAny}, {"43", "Окончательный ответ: 42.", N, kAny},
  {"42", "最終的な答えは 42 です。", Y, kAny}, {"42", "最终答案为 $42$", Y, kAny},
  {"42", "الإجابة هي 42", Y, kAny}, {"42", "अतः उत्तर है 42।", Y, kAny},
  // --- a fourth batch: doubled escapes, ordinals, intervals and equations in context ---
  {"(-\\infty,2)\\cup(3,\\infty)", "x \\in (-\\infty, 2) \\cup (3, \\infty)", Y, kAny},
  {"\\frac{x-3}{2}", "f^{-1}(x) = \\frac{x-3}{2}", Y, kAny},
  {"3x + 4y = 8", "y = -\\frac{3}{4}x + 2", Y, kAny}, {"1234.56", "\\$1,234.56", Y, kAny},
  {"3 \\times 10^8", "3.0 \\times 10^8 \\text{ m/s}", Y, kAny},
  {"\\frac{1}{7}", "0.142857142857", Y, kAny},
  {"(\\frac12, \\frac32)", "x=\\frac{1}{2}, y=\\frac{3}{2}", Y, kAny},
  {"(1,2)", "(x, y) = (1, 2)", Y, kAny}, {"45", "\\theta = 45^\\circ", Y, kAny},
  {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\\\begin{pmatrix}1&2\\\\\\\\3&4\\\\end{pmatrix}", Y, kAny},
  {"2", "\\boxed{2}.", Y, kAny}, {"\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt2}2", Y, kAny},
  {"6", "\\boxed{6} \\boxed{7}", N, kAny}, {"-3", "-3", Y, kAny}, {"-3", "\\text{-3}", Y, kAny},
  {"1", "\\text{The answer is } 1", Y, kAny}, {"13", "13\\text{th}", Y, kAny},
  {"2", "2nd", Y, kAny}, {"\\text{Alice}", "Alice", Y, kAny}, {"\\text{Alice}", "Bob", N, kAny},
  {"8", "$8.", Y, kAny}, {"0", "zero", N, kAny}, {"\\frac{1}{2}", "1:2", Y, kAny},
  {"90", "90 degrees", Y, kAny}, {"90", "\\frac{\\pi}{2}", N, kAny},
  {"y^2 = 4x", "y^2=4x", Y, kAny}, {"x^2 + y^2 = 25", "x^2+y^2-25=0", Y, kAny},
  {"x^2 + y^2 = 25", "x^2+y^2=5", N, kAny}, {"(2, \\infty)", "(2, +\\infty)", Y, kAny},
  {"[0, \\pi]", "[0, 3.1416]", Y, kAny}, {"2\\sqrt{3} - 1", "-1 + 2\\sqrt3", Y, kAny},
  {"\\frac{3}{5}", "60\\%", Y, kAny}, {"7.5", "7\\frac{1}{2}", Y, kAny},
  {"1/2, 1/3", "\\frac13, \\frac12", Y, kAny}, {"1/2, 1/3", "\\frac13", N, kAny},
  {"0.3", "30\\%", Y, kAny}, {"4", "4 \\text{ and } 4", N, kAny},
  // --- a fifth batch: wrong answers in other spellings, and the right one among wrong ones ---
  {"\\frac{3}{5}", "0.65", N, kAny}, {"\\frac{3}{5}", "60", N, kAny}, {"0.6", "6\\%", N, kAny},
  {"2\\sqrt{5}", "\\sqrt{10}", N, kAny}, {"\\frac{\\pi}{3}", "\\frac{\\pi}{6}", N, kAny},
  {"(1, -1)", "(-1, 1)", N, kAny}, {"x > 5", "x \\ge 5", N, kAny}, {"[1, 5]", "(1, 5)", N, kAny},
  {"\\{1, 2, 3\\}", "\\{1, 2\\}", N, kAny}, {"y = x + 1", "y = x - 1", N, kAny},
  {"16", "4^3", N, kAny}, {"1/3", "0.33", N, kAny}, {"1/3", "0.3334", N, kAny},
  {"12", "12.5", N, kAny}, {"12", "1,2", N, kAny}, {"1200", "1,20", N, kAny},
  {"7", "The answer is 7 + 1 = 8", N, kAny}, {"8", "The answer is 7 + 1 = 8", Y, kAny},
  {"5", "x = 5, y = 3", N, kAny}, {"(5, 3)", "x = 5, y = 3", Y, kAny},
  {"3", "5 - 2 = 3, so the answer is 4", N, kAny}, {"4", "5 - 2 = 3, so the answer is 4", Y, kAny},
  {"A", "The answer is B, not A.", N, kAny}, {"B", "The answer is B, not A.", Y, kAny},
  {"100", "99.9", N, kAny}, {"100", "100.4", N, kAny}, {"\\$5", "\\$50", N, kAny},
  {"50\\%", "5\\%", N, kAny}, {"2", "\\sqrt{2}", N, kAny}, {"e", "2.7", N, kAny},
  {"x^2 - 1", "x^2 + 1", N, kAny}, {"\\sin x", "\\cos x", N, kAny}, {"\\ln 2", "\\log 2", N, kAny},
  {"\\log_2 x", "\\ln x", N, kAny}, {"n!", "n", N, kAny}, {"2^n", "n^2", N, kAny},
  {"-\\infty", "\\infty", N, kAny}, {"\\emptyset", "0", N, kAny}, {"3 + 2i", "3 - 2i", N, kAny},
  {"i", "-i", N, kAny}, {"\\frac{1}{2}", "-\\frac{1}{2}", N, kAny}, {"0", "O", N, kAny},
  {"10", "10^{1}", Y, kAny}, {"11", "1 1", N, kAny}, {"1.5", "1.50000001", Y, kAny},
  {"3", "\\boxed{3}\\boxed{4}", N, kAny}, {"\\text{yes}", "\\text{no}", N, kAny},
  // --- a gold equation in one variable against predicted solutions (issue 15); a prediction
  // that only restates an equation has not solved it ---
  {"x^2 = 4", "x = \\pm 2", Y, kAny}, {"x^2 = 4", "x = 2, x = -2", Y, kAny},
  {"x^2 = 4", "\\{-2, 2\\}", Y, kAny}, {"x^2 = 4", "-2, 2", Y, kAny},
  {"x^2 = 4", "x = 2", N, kAny}, {"x^2 = 4", "\\{2, 4\\}", N, kAny},
  {"x^2 = 4", "x = \\pm 4", N, kAny}, {"x = \\pm 3", "x^2 = 9", N, kAny},
  {"\\{-3, 3\\}", "x^2 - 9 = 0", N, kAny}, {"-3, 3", "x^2 = 8", N, kAny},
  {"3x - 7 = 5", "x = 4", Y, kAny}, {"3x - 7 = 5", "4", Y, kAny}, {"3x - 7 = 5", "x = 5", N, kAny},
  {"4", "2x + 1 = 9", N, kAny}, {"\\frac{7}{2}", "2x = 7", N, kAny}, {"3", "2x = 7", N, kAny},
  {"x^2 - 5x + 6 = 0", "x = 2 \\text{ or } x = 3", Y, kAny},
  {"x^2 - 5x + 6 = 0", "x_1 = 3, x_2 = 2", Y, kAny}, {"x^2 - 5x + 6 = 0", "x = 2, x = -3", N, kAny},
  {"t^2 = 2", "t = \\pm\\sqrt{2}", Y, kAny}, {"t^2 = 2", "\\{\\sqrt{2}, -\\sqrt{2}\\}", Y, kAny},
  {"t^2 = 2", "t = \\pm\\sqrt{3}", N, kAny}, {"x^2 + 2x - 1 = 0", "x = -1 \\pm \\sqrt{2}", Y, kAny},
  {"x^2 + 2x - 1 = 0", "x = 1 \\pm \\sqrt{2}", N, kAny},
  {"2x^2 = 3x", "x = 0, x = \\frac{3}{2}", Y, kAny}, {"2x^2 = 3x", "x = \\frac{3}{2}", N, kAny},
  {"(x - 1)^2 = 0", "x = 1", Y, kAny}, {"x^2 - 6x + 9 = 0", "3", Y, kAny},
  {"x^2 = 4", "y = \\pm 2", N, kAny}, {"x^2 + 1 = 0", "x = 1, x = -1", N, kAny},
  // --- units stuck to numbers are dropped alike on both sides; percent by the documented rule ---
  {"5", "5cm", Y, kAny}, {"5", "5 cm", Y, kAny}, {"5 cm", "5", Y, kAny}, {"5cm", "5\\,\\text{cm}", Y, kAny},
  {"5 \\text{cm}^2", "5", Y, kAny}, {"12 \\mathrm{m/s}", "12", Y, kAny}, {"5 cm", "6 cm", N, kAny},
  {"5 cm", "50 mm", N, kAny}, {"1 km", "1000 m", N, kAny}, {"\\$5", "5 dollars", Y, kAny},
  {"50\\%", "0.5", Y, kAny}, {"50\\%", "50", Y, kAny}, {"0.5", "50", N, kAny},
  {"50", "0.5", N, kAny}, {"50\\%", "5", N, kAny}, {"0.5", "\\frac{1}{2}\\%", Y, kAny},
  {"7", "7min", Y, kAny}, {"60", "60km/h", Y, kAny}, {"3", "3kg", Y, kAny}, {"3", "4kg", N, kAny},
  {"2c", "2cm", N, kAny}, {"6ab", "6ab", Y, kAny}, {"2x", "2", N, kAny},
};
// clang-format on

std::string boxed(const char* pred) {
  return std::string("The final answer is $\\boxed{") + pred + "}$.";
}

bool judged_equal(const std::string& completion, const char* gold) {
  MathCheck c = check_math(completion, gold, MathOptions{}, ExtractOptions{});
  return c.verdict == MathVerdict::kEqual;
}

std::string explain(const std::string& completion, const char* gold) {
  MathCheck c = check_math(completion, gold, MathOptions{}, ExtractOptions{});
  return "gold \"" + c.gold + "\" extracted \"" + c.extracted.text + "\" (" +
         answer_source_name(c.extracted.source) + ") -> " + verdict_name(c.verdict);
}

// Runs every case of the wrapping; counts agreements and false positives.
void run_suite(bool wrap_boxed) {
  int agree = 0, total = 0, false_pos = 0, unequal = 0;
  double slowest_ms = 0;
  for (const auto& c : kSuite) {
    if (c.mode == (wrap_boxed ? kRaw : kBoxed)) continue;
    std::string completion = wrap_boxed ? boxed(c.pred) : std::string(c.pred);
    auto t0 = std::chrono::steady_clock::now();
    bool got = judged_equal(completion, c.gold);
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    slowest_ms = std::max(slowest_ms, ms);
    ++total;
    unequal += !c.equal;
    false_pos += got && !c.equal;
    if (got == c.equal) {
      ++agree;
    } else {
      ADD_FAILURE() << (c.equal ? "missed: " : "false positive: ") << "pred \"" << c.pred
                    << "\" gold \"" << c.gold << "\": " << explain(completion, c.gold);
    }
  }
  std::printf("[math suite] %s: %d/%d agree, %d false positives of %d unequal pairs, "
              "slowest case %.2f ms\n",
              wrap_boxed ? "boxed" : "raw", agree, total, false_pos, unequal, slowest_ms);
  EXPECT_LT(slowest_ms, 1000.0);  // every case decided in under a second
}

TEST(MathSuite, TableHasAtLeast400Cases) { EXPECT_GE(std::size(kSuite), 400u); }

TEST(MathSuite, BoxedPredictions) { run_suite(true); }

TEST(MathSuite, RawCompletions) { run_suite(false); }

}  // namespace
}  // namespace aha::rewards
