// Table-driven tests of math equivalence: positive and negative cases across numbers, LaTeX,
// structures and expressions, plus adversarial inputs that must come back fast as unparsable.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "aha/core/rng.h"
#include "aha/rewards/math.h"

namespace aha::rewards {
namespace {

enum E { kEq, kNe, kUn };

struct Case {
  const char* pred;
  const char* gold;
  E want;
};

// clang-format off
const Case kCases[] = {
  // integers, signs, leading zeros, whitespace
  {"3", "3", kEq}, {"3", "4", kNe}, {"-3", "-3", kEq}, {"-3", "3", kNe}, {"+3", "3", kEq},
  {"003", "3", kEq}, {" 42 ", "42", kEq}, {"0", "-0", kEq}, {"10", "1", kNe}, {"-0", "0", kEq},
  {"123456789", "123456789", kEq}, {"123456789", "123456788", kNe},
  {"99999999999999999999", "99999999999999999999", kEq},
  {"99999999999999999999", "99999999999999999998", kNe},
  // decimals (a decimal showing 3+ decimals matches the value it rounds; else 6 decimals)
  {"0.5", "0.50", kEq}, {".5", "0.5", kEq}, {"2.0", "2", kEq}, {"2.5", "2.50000", kEq},
  {"0.333", "0.3333", kNe}, {"3.14", "3.141", kNe}, {"1.0000001", "1", kEq},
  {"1.001", "1", kNe}, {"-0.25", "-\\frac{1}{4}", kEq}, {"0.1", "\\frac{1}{10}", kEq},
  // thousands separators
  {"1,000", "1000", kEq}, {"1,000,000", "1000000", kEq}, {"12,345", "12345", kEq},
  {"1{,}000", "1000", kEq}, {"1\\,000", "1000", kEq}, {"1 000 000", "1000000", kEq},
  {"1,000.5", "1000.5", kEq}, {"1,001", "1000", kNe}, {"2,500", "2500", kEq},
  // scientific notation
  {"1.5e3", "1500", kEq}, {"1e-3", "0.001", kEq}, {"2E5", "200000", kEq},
  {"1.5\\times10^{3}", "1500", kEq}, {"3 \\times 10^8", "300000000", kEq},
  {"6.02\\times 10^{23}", "6.02e23", kEq}, {"1e3", "100", kNe}, {"10^{-2}", "0.01", kEq},
  // fractions
  {"\\frac{1}{2}", "0.5", kEq}, {"\\dfrac{1}{2}", "\\frac12", kEq}, {"\\tfrac{3}{4}", "0.75", kEq},
  {"1/2", "\\frac{1}{2}", kEq}, {"2/4", "1/2", kEq}, {"\\frac{2}{3}", "0.6667", kEq},
  {"\\frac{2}{3}", "\\frac{4}{6}", kEq}, {"\\frac{1}{3}", "\\frac{1}{4}", kNe},
  {"-\\frac{1}{2}", "\\frac{-1}{2}", kEq}, {"\\frac{-1}{2}", "\\frac{1}{-2}", kEq},
  {"\\frac{1}{2}", "-\\frac{1}{2}", kNe}, {"\\frac{10}{4}", "2.5", kEq}, {"\\frac{7}{2}", "3.5", kEq},
  {"\\frac{\\frac{1}{2}}{3}", "\\frac{1}{6}", kEq}, {"\\frac{1}{\\frac{1}{3}}", "3", kEq},
  {"\\frac 1 2", "0.5", kEq}, {"\\frac{22}{7}", "3.142857142857", kEq}, {"\\frac{22}{7}", "\\pi", kNe},
  // mixed numbers
  {"3\\frac{1}{2}", "\\frac{7}{2}", kEq}, {"3 1/2", "3.5", kEq}, {"2\\frac{3}{4}", "2.75", kEq},
  {"1\\frac{1}{3}", "\\frac{4}{3}", kEq}, {"3\\frac{1}{2}", "1.5", kNe},
  {"2\\frac{\\pi}{3}", "\\frac{2\\pi}{3}", kEq},
  // percentages
  {"50\\%", "50\\%", kEq}, {"50\\%", "0.5", kEq}, {"50%", "50", kEq}, {"25\\%", "\\frac14", kEq},
  {"50\\%", "0.25", kNe}, {"12.5\\%", "0.125", kEq}, {"33\\%", "33", kEq}, {"40%", "4", kNe},
  // sqrt and roots
  {"\\sqrt{2}", "\\sqrt2", kEq}, {"\\sqrt{8}", "2\\sqrt{2}", kEq}, {"\\sqrt{4}", "2", kEq},
  {"\\sqrt{2}", "1.41421356", kEq}, {"\\sqrt{3}", "1.7", kNe}, {"\\sqrt[3]{8}", "2", kEq},
  {"\\sqrt[3]{27}", "3", kEq}, {"\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", kEq},
  {"\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", kEq}, {"\\sqrt{12}", "2\\sqrt{3}", kEq},
  {"3\\sqrt{2}", "\\sqrt{18}", kEq}, {"\\sqrt{2}+1", "1+\\sqrt{2}", kEq}, {"\\sqrt{2}", "2", kNe},
  {"\\sqrt{\\frac{1}{4}}", "\\frac12", kEq}, {"2^{1/2}", "\\sqrt{2}", kEq},
  {"\\sqrt{50}", "5\\sqrt{2}", kEq}, {"5\\sqrt{2}", "5\\sqrt{3}", kNe}, {"sqrt(2)", "\\sqrt{2}", kEq},
  // pi
  {"\\pi", "3.14159265", kEq}, {"2\\pi", "\\pi \\cdot 2", kEq}, {"\\frac{\\pi}{2}", "\\pi/2", kEq},
  {"\\pi", "3.14", kNe}, {"\\frac{3\\pi}{4}", "\\frac{3}{4}\\pi", kEq}, {"4\\pi", "4", kNe},
  {"\\pi r^2", "r^2\\pi", kEq}, {"36\\pi", "36 \\pi", kEq}, {"6\\pi", "12\\pi", kNe},
  // exponents
  {"2^{10}", "1024", kEq}, {"2^10", "1024", kEq}, {"2^{-1}", "0.5", kEq}, {"(-2)^3", "-8", kEq},
  {"-2^2", "-4", kEq}, {"(-2)^2", "4", kEq}, {"3^{2}", "6", kNe}, {"10^{3}", "1000", kEq},
  {"4^{\\frac{1}{2}}", "2", kEq}, {"8^{2/3}", "4", kEq}, {"2^{3^2}", "512", kEq},
  {"e^{0}", "1", kEq}, {"e", "2.718281828459045", kEq},
  // units and text
  {"5 \\text{ cm}", "5", kEq}, {"5\\text{cm}", "5", kEq}, {"10 \\text{ dollars}", "10", kEq},
  {"12 \\mbox{ inches}", "12", kEq}, {"3 \\text{ m}^2", "3", kEq}, {"5\\ \\text{cm}", "6", kNe},
  {"7 apples", "7", kEq}, {"20 \\text{ square feet}", "20", kEq}, {"\\$10", "10", kEq},
  {"\\$1,000", "1000", kEq}, {"\\$10.50", "10.5", kEq}, {"\\text{Monday}", "Monday", kEq},
  {"\\text{monday}", "Monday", kEq}, {"Tuesday", "Monday", kNe}, {"\\textbf{42}", "42", kEq},
  {"\\mathrm{42}", "42", kEq}, {"yes", "Yes", kEq}, {"no", "yes", kNe},
  // degrees
  {"30^\\circ", "30", kEq}, {"30^{\\circ}", "30", kEq}, {"45\xC2\xB0", "45", kEq},
  {"90^\\circ", "45^\\circ", kNe}, {"120^{\\circ}", "120^\\circ", kEq},
  // left/right and spacing commands
  {"\\left(1,2\\right)", "(1,2)", kEq}, {"\\left[0,1\\right]", "[0,1]", kEq},
  {"\\!3", "3", kEq}, {"3\\;", "3", kEq}, {"\\displaystyle\\frac{1}{2}", "0.5", kEq},
  {"\\quad 7", "7", kEq}, {"x\\,y", "xy", kEq}, {"\\left\\{1,2\\right\\}", "\\{1,2\\}", kEq},
  // dollar signs and trailing periods
  {"$5$", "5", kEq}, {"$\\frac{1}{2}$", "0.5", kEq}, {"5.", "5", kEq}, {"\\(5\\)", "5", kEq},
  {"\\[5\\]", "5", kEq},
  // tuples, points, vectors
  {"(1,2)", "(1,2)", kEq}, {"(1, 2)", "(1,2)", kEq}, {"(2,1)", "(1,2)", kNe},
  {"(1,2,3)", "(1,2,3)", kEq}, {"(1,2)", "(1,2,3)", kNe}, {"(0.5, 1)", "(\\frac12, 1)", kEq},
  {"\\langle 1, 2\\rangle", "(1,2)", kEq}, {"(-1, \\sqrt{2})", "(-1, 1.41421356)", kEq},
  {"(3, -4)", "(3, 4)", kNe}, {"(x, y)", "(x, y)", kEq},
  {"\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1,2)", kEq},
  // intervals
  {"[1,2]", "[1,2]", kEq}, {"[1,2)", "[1,2)", kEq}, {"(1,2]", "(1,2]", kEq},
  {"[1,2)", "(1,2)", kNe}, {"[1,2]", "[1,2)", kNe}, {"(1,2]", "[1,2]", kNe},
  {"(-\\infty, 3)", "(-\\infty,3)", kEq}, {"(-\\infty, 3]", "(-\\infty, 3)", kNe},
  {"[0, \\infty)", "[0,\\infty)", kEq}, {"(-\\infty,1)\\cup(2,\\infty)", "(2,\\infty)\\cup(-\\infty,1)", kEq},
  {"(-\\infty,1)\\cup(2,\\infty)", "(-\\infty,1)\\cup(3,\\infty)", kNe},
  {"[\\frac12, 1]", "[0.5, 1]", kEq}, {"x \\in [1, 2]", "[1,2]", kEq}, {"(-\\infty, \\infty)", "(-\\infty, \\infty)", kEq},
  // sets and multiple answers
  {"\\{1,2\\}", "\\{2,1\\}", kEq}, {"\\{1,2,3\\}", "\\{3,1,2\\}", kEq}, {"\\{1,2\\}", "\\{1,3\\}", kNe},
  {"\\{1,2\\}", "\\{1,2,3\\}", kNe}, {"1, 2", "2, 1", kEq}, {"1,2,3", "3,2,1", kEq},
  {"1, 2", "1, 3", kNe}, {"x = 1, 2", "1, 2", kEq}, {"2, 3", "\\{2,3\\}", kEq},
  {"-1, 1", "\\pm 1", kEq}, {"1 \\pm \\sqrt{2}", "1+\\sqrt{2}, 1-\\sqrt{2}", kEq},
  {"1 \\text{ and } 2", "1, 2", kEq}, {"x = 1 \\text{ or } x = 2", "1, 2", kEq},
  {"\\{\\frac12, 2\\}", "\\{2, 0.5\\}", kEq}, {"\\emptyset", "\\{\\}", kEq}, {"\\{3\\}", "3", kEq},
  {"x=1, x=2", "2, 1", kEq}, {"1,1,2", "1,2,2", kNe},
  // equations
  {"x = 3", "3", kEq}, {"3", "x = 3", kEq}, {"x=3", "x=3", kEq}, {"x = 3", "4", kNe},
  {"y = 2x + 1", "y = 1 + 2x", kEq}, {"y = 2x + 1", "y = 2x - 1", kNe}, {"a = 5", "5", kEq},
  {"x = \\frac{1}{2}", "0.5", kEq}, {"k = -2", "-2", kEq}, {"y=2x+1", "2x+1=y", kEq},
  {"x^2 + y^2 = 1", "y^2 + x^2 = 1", kEq}, {"x^2 + y^2 = 1", "x^2 + y^2 = 2", kNe},
  // matrices
  {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", kEq},
  {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", kNe},
  {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", kNe},
  {"\\begin{pmatrix}\\frac12&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}0.5&0\\\\0&1\\end{pmatrix}", kEq},
  {"\\begin{matrix}1&2\\end{matrix}", "\\begin{pmatrix}1&2\\end{pmatrix}", kEq},
  {"\\begin{pmatrix}1&2&3\\end{pmatrix}", "\\begin{pmatrix}1&2\\end{pmatrix}", kNe},
  {"\\begin{pmatrix} -1 \\\\ 2 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix} -1 \\\\ 2 \\\\ 0 \\end{pmatrix}", kEq},
  {"\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", "(2,-1)", kEq},
  // symbolic expressions
  {"2x+1", "1+2x", kEq}, {"x^2-1", "(x-1)(x+1)", kEq}, {"x^2+1", "(x-1)(x+1)", kNe},
  {"(x+1)^2", "x^2+2x+1", kEq}, {"(x+1)^2", "x^2+x+1", kNe}, {"\\frac{x^2-1}{x-1}", "x+1", kEq},
  {"2(x+y)", "2x+2y", kEq}, {"xy", "yx", kEq}, {"x y", "xy", kEq}, {"x", "y", kNe},
  {"a^2b", "ba^2", kEq}, {"\\frac{1}{x}+\\frac{1}{y}", "\\frac{x+y}{xy}", kEq},
  {"\\sqrt{x^2}", "x", kNe}, {"|x|", "\\sqrt{x^2}", kEq}, {"\\frac{a}{b}", "a/b", kEq},
  {"3x^2", "3 x^{2}", kEq}, {"x^3", "x^2", kNe}, {"(a+b)(a-b)", "a^2-b^2", kEq},
  {"\\sin^2 x + \\cos^2 x", "1", kEq}, {"\\sin(2x)", "2\\sin x\\cos x", kEq},
  {"\\ln(e^2)", "2", kEq}, {"\\log_2 8", "3", kEq}, {"\\log_{10} 1000", "3", kEq},
  {"\\ln 1", "0", kEq}, {"\\exp(0)", "1", kEq}, {"2n+1", "2n-1", kNe}, {"n(n+1)/2", "\\frac{n^2+n}{2}", kEq},
  {"\\frac{n(n+1)}{2}", "\\binom{n+1}{2}", kEq}, {"\\alpha + \\beta", "\\beta+\\alpha", kEq},
  {"x_1 + x_2", "x_2 + x_1", kEq}, {"x_1", "x_2", kNe}, {"4t^2-4t+1", "(2t-1)^2", kEq},
  {"\\frac{x+1}{2}", "\\frac{x}{2}+\\frac{1}{2}", kEq}, {"\\frac{x+1}{2}", "\\frac{x}{2}+1", kNe},
  {"\\sqrt{x}\\sqrt{x}", "x", kEq}, {"x^{-1}", "\\frac{1}{x}", kEq}, {"-(x-1)", "1-x", kEq},
  {"3a+2b", "2b+3a", kEq}, {"3a+2b", "2a+3b", kNe}, {"(x-2)(x-3)", "x^2-5x+6", kEq},
  // factorials and binomials
  {"5!", "120", kEq}, {"\\binom{5}{2}", "10", kEq}, {"\\dbinom{6}{3}", "20", kEq}, {"4!", "25", kNe},
  {"0!", "1", kEq}, {"\\frac{10!}{8!}", "90", kEq}, {"20!", "2432902008176640000", kEq},
  {"\\binom{10}{0}", "1", kEq},
  // trig values
  {"\\sin(\\pi/6)", "\\frac12", kEq}, {"\\cos 0", "1", kEq}, {"\\tan(\\pi/4)", "1", kEq},
  {"\\frac{\\sqrt{2}}{2}", "\\sin(\\pi/4)", kEq}, {"\\cos(\\pi)", "1", kNe},
  // absolute values
  {"|-3|", "3", kEq}, {"|3-5|", "2", kEq}, {"|-3|", "-3", kNe},
  // cdot / times / div
  {"2\\cdot 3", "6", kEq}, {"2 \\times 3", "6", kEq}, {"6 \\div 3", "2", kEq}, {"2*3", "5", kNe},
  // implicit multiplication
  {"2(3)", "6", kEq}, {"(2)(3)", "6", kEq}, {"2\\sqrt{3}", "\\sqrt{12}", kEq},
  {"\\sqrt{3}\\pi", "\\pi\\sqrt{3}", kEq},
  // multiple choice letters
  {"(A)", "A", kEq}, {"\\text{(B)}", "B", kEq}, {"A", "B", kNe}, {"(C)", "\\text{C}", kEq},
  {"\\textbf{(D)}", "D", kEq}, {"E", "(D)", kNe},
  // inequalities
  {"x > 3", "x > 3", kEq}, {"x \\geq 2", "x \\ge 2", kEq}, {"x < 3", "3 > x", kEq},
  {"x \\le 2", "x < 2", kNe}, {"x>3", "x>4", kNe},
  // big and exact integers
  {"2^{64}", "18446744073709551616", kEq}, {"2^{64}", "18446744073709551617", kNe},
  {"10^{20}", "100000000000000000000", kEq},
  // unparsable predictions never equal a gold
  {"", "3", kUn}, {"\\frac{1}{", "3", kUn}, {"((((", "3", kUn}, {"3 4", "34", kUn},
  {"\\undefinedcommand{3}", "3", kUn},
  // more numbers
  {"1/3", "0.3333333333", kEq}, {"0.3333", "1/3", kEq}, {"0.33", "1/3", kNe}, {"2/3", "0.666666667", kEq},
  {"100", "100.0", kEq}, {"1e2", "100", kEq}, {"7", "7.0000001", kEq}, {"7", "7.01", kNe},
  {"-5", "-5.0", kEq}, {"-5", "5", kNe}, {"0.001", "0.002", kNe}, {"1000000", "10^6", kEq},
  {"\\frac{1}{1000}", "0.001", kEq}, {"-\\frac{3}{2}", "-1.5", kEq}, {"\\frac{3}{-2}", "-1.5", kEq},
  {"\\frac{5}{2}", "2\\frac{1}{2}", kEq}, {"18", "18", kEq}, {"180", "18", kNe},
  {"3.0", "3", kEq}, {"3.50", "7/2", kEq}, {"15\\%", "0.15", kEq}, {"150\\%", "1.5", kEq},
  {"\\frac{13}{4}", "3.25", kEq}, {"\\frac{13}{4}", "3.2", kNe}, {"2.718", "e", kEq}, {"2.717", "e", kNe},
  {"-\\sqrt{3}", "-1.7320508", kEq}, {"\\sqrt{3}", "-\\sqrt{3}", kNe},
  {"\\frac{\\sqrt{5}-1}{2}", "0.6180339887", kEq}, {"\\frac{1+\\sqrt{5}}{2}", "\\frac{\\sqrt{5}+1}{2}", kEq},
  {"2+\\sqrt{3}", "2-\\sqrt{3}", kNe}, {"\\frac{4}{\\sqrt{2}}", "2\\sqrt{2}", kEq},
  {"\\sqrt{2}\\cdot\\sqrt{8}", "4", kEq}, {"9^{1/2}", "3", kEq}, {"27^{\\frac{1}{3}}", "3", kEq},
  {"16^{-1/2}", "\\frac14", kEq}, {"(\\frac{2}{3})^2", "\\frac{4}{9}", kEq}, {"(\\frac{2}{3})^{-1}", "1.5", kEq},
  {"\\frac{1}{2}+\\frac{1}{3}", "\\frac{5}{6}", kEq}, {"\\frac{1}{2}\\cdot\\frac{2}{3}", "\\frac13", kEq},
  {"3 + 4", "7", kEq}, {"3 - 4", "-1", kEq}, {"3-4", "1", kNe},
  // GSM8K-style money and counts
  {"18", "18.00", kEq}, {"\\$18.00", "18", kEq}, {"1,200", "1200", kEq}, {"1,200", "120", kNe},
  {"3 hours", "3", kEq}, {"45 minutes", "45", kEq}, {"$45", "45", kEq}, {"5 \\%", "5\\%", kEq},
  // equations with fractions and roots
  {"x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}", "x=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}", kEq},
  {"x = -\\frac{1}{3}", "-1/3", kEq}, {"t=2", "2", kEq}, {"n = 10", "10", kEq}, {"n = 10", "11", kNe},
  // points with expressions
  {"(\\frac{1}{2}, \\frac{\\sqrt{3}}{2})", "(0.5, 0.8660254)", kEq},
  {"(2\\sqrt{2}, 1)", "(\\sqrt{8}, 1)", kEq}, {"(1, 2\\pi)", "(1, \\pi)", kNe},
  // symbolic with constants
  {"\\frac{\\pi}{3}+\\frac{\\pi}{6}", "\\frac{\\pi}{2}", kEq}, {"2\\pi r", "2r\\pi", kEq},
  {"\\frac{4}{3}\\pi r^3", "\\frac{4\\pi r^3}{3}", kEq}, {"\\pi r^2 h", "\\pi r h^2", kNe},
  // unicode symbols, inverse trig, repeating decimals
  {"\xE2\x88\x92" "3", "-3", kEq}, {"2\xCF\x80", "2\\pi", kEq}, {"\xE2\x88\x9A" "2", "\\sqrt{2}", kEq},
  {"3\xC3\x97" "4", "12", kEq}, {"\\cos^{-1}(0)", "\\frac{\\pi}{2}", kEq},
  {"\\sin^{-1}(1)", "\\frac{\\pi}{2}", kEq}, {"\\sin^2(x)", "\\sin(x)^2", kEq},
  {"1.\\overline{3}", "\\frac43", kEq}, {"0.1\\overline{6}", "\\frac{1}{6}", kEq},
  {"0.\\overline{142857}", "\\frac{1}{7}", kEq}, {"0.\\overline{3}", "0.3", kNe},
  // more structures and expressions seen in MATH answers
  {"\\frac{1}{2}x", "x/2", kEq}, {"2^{\\frac{1}{3}}", "\\sqrt[3]{2}", kEq}, {"-\\infty", "\\infty", kNe},
  {"\\frac{\\sqrt{6}}{3}", "\\sqrt{\\frac{2}{3}}", kEq}, {"x \\neq 1", "x \\ne 1", kEq},
  {"a=2, b=3", "(2,3)", kEq}, {"f(x) = 2x + 1", "2x+1", kEq}, {"y=-\\frac{1}{2}x+3", "y = 3 - \\frac{x}{2}", kEq},
  {"\\frac{x}{x+1}", "1-\\frac{1}{x+1}", kEq}, {"1\\%", "0.01", kEq}, {"-2, 3", "x=-2 \\text{ or } x=3", kEq},
  {"2\\sqrt{2}+2", "2(1+\\sqrt{2})", kEq}, {"2^{100}", "1267650600228229401496703205376", kEq},
  {"\\tan \\theta", "\\frac{\\sin\\theta}{\\cos\\theta}", kEq}, {"3\\sqrt{3}", "5.196", kEq}, {"3\\sqrt{3}", "5.197", kNe},
  {"\\frac{1}{2} \\text{ hour}", "0.5", kEq}, {"(3,4)", "(4,3)", kNe}, {"\\frac{7}{25}", "0.28", kEq},
  // equations equal up to a nonzero factor
  {"x+y=1", "y=1-x", kEq}, {"2x=6", "x=3", kEq}, {"y=2x+1", "2x-y+1=0", kEq},
  {"y=2x+1", "2x-y-1=0", kNe}, {"x=3", "y=3", kNe}, {"x^2+y^2=1", "2x^2+2y^2=2", kEq},
  {"x^2+y^2=1", "x^2+y^2=4", kNe}, {"3x - 2y = 5", "6x - 4y = 10", kEq}, {"3x - 2y = 5", "3x + 2y = 5", kNe},
  // near misses that must not be called equal
  {"\\{1,2\\}", "(1,2)", kNe}, {"[2,3]", "\\begin{pmatrix}2&3\\end{pmatrix}", kEq}, {"[2,3)", "\\begin{pmatrix}2&3\\end{pmatrix}", kNe}, {"(1,2)", "[1,2]", kNe},
  {"2", "2.0001", kNe}, {"1/2", "2/1", kNe}, {"\\frac{1}{2}", "\\frac{1}{2}x", kNe}, {"5", "5!", kNe},
  {"0", "0.0000001", kEq}, {"0", "0.000001", kNe}, {"x=5", "x=-5", kNe}, {"\\infty", "-\\infty", kNe}, {"\\sqrt{2}", "\\sqrt{3}", kNe},
  {"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "(1,2,3,4)", kNe}, {"1,2", "\\{1,2\\}", kEq},
  {"\\text{\\text{\\text{1}}}", "1", kEq}, {"\\frac{1}{0}", "1", kNe}, {"\\sqrt{-1}", "1", kNe},
  {"(-8)^{1/3}", "-2", kEq}, {"1e400", "1e400", kEq}, {"1e400", "1e401", kUn}, {"10^{400}", "10^{401}", kUn},
  {"-\\infty", "-\\infty", kEq}, {"\\infty", "10^{400}", kUn},
  {"x**2", "x^2", kEq}, {"2**3", "8", kEq}, {"\\boxed{3}", "3", kEq}, {"\\fbox{3}", "4", kNe},
  {"\\lfloor 3.7 \\rfloor", "3", kEq}, {"\\lceil 3.2 \\rceil", "4", kEq}, {"\\left\\lfloor -\\frac{1}{2} \\right\\rfloor", "-1", kEq},
  {"\\lceil -\\frac{1}{2} \\rceil", "0", kEq}, {"\\lfloor \\pi \\rfloor", "3", kEq}, {"\\lfloor 7/2 \\rfloor", "4", kNe},
  {"\\frac{-1 \\pm \\sqrt{5}}{2}", "\\frac{-1+\\sqrt5}{2}, \\frac{-1-\\sqrt5}{2}", kEq}, {"\\pm 2", "2, -2", kEq},
  {"(2, \\infty)", "x > 2", kEq}, {"[2, \\infty)", "x \\ge 2", kEq}, {"(2, \\infty)", "x \\ge 2", kNe},
  {"(-\\infty, 3]", "x \\le 3", kEq}, {"(-\\infty, 3)", "3 > x", kEq}, {"(1, 3]", "1 < x \\le 3", kEq},
  {"(1, 3)", "1 < x < 3", kEq}, {"[1, 3)", "1 < x < 3", kNe}, {"(3, \\infty)", "x < 3", kNe},
  {"(-\\infty, 4)", "x < 3", kNe}, {"(0.5, \\infty)", "x > \\frac{1}{2}", kEq},
  {"x=\\pm2", "2,-2", kEq}, {"\\pm 2", "2, 3", kNe}, {"(1,2),(3,4)", "(3,4),(1,2)", kEq},
  {"\\{(1,2),(3,4)\\}", "\\{(3,4),(1,2)\\}", kEq}, {"\\{(1,2),(3,4)\\}", "\\{(2,1),(3,4)\\}", kNe},
};
// clang-format on

std::string describe(const Case& c) {
  return std::string("pred=\"") + c.pred + "\" gold=\"" + c.gold + "\" normalized pred=\"" +
         normalize_answer(c.pred) + "\" gold=\"" + normalize_answer(c.gold) + "\"";
}

TEST(MathEqual, TableHasAtLeast300Cases) { EXPECT_GE(std::size(kCases), 300u); }

TEST(MathEqual, Table) {
  int failures = 0;
  for (const auto& c : kCases) {
    MathVerdict v = math_equal(c.pred, c.gold);
    MathVerdict want = c.want == kEq ? MathVerdict::kEqual
                       : c.want == kNe ? MathVerdict::kNotEqual
                                       : MathVerdict::kUnparsable;
    if (v != want) {
      ++failures;
      ADD_FAILURE() << describe(c) << " -> " << verdict_name(v) << ", want " << verdict_name(want);
    }
  }
  EXPECT_EQ(failures, 0);
}

// Equality must not depend on which side is the gold, once an interval may also answer an
// inequality (Math-Verify's one-way rule is the default).
TEST(MathEqual, SymmetricOnEqualCases) {
  MathOptions relations_both_ways;
  relations_both_ways.allow_set_relation = true;
  for (const auto& c : kCases) {
    if (c.want != kEq) continue;
    EXPECT_EQ(math_equal(c.gold, c.pred, relations_both_ways), MathVerdict::kEqual) << describe(c);
  }
}

TEST(MathEqual, ToleranceIsConfigurable) {
  MathOptions loose;
  loose.rel_tol = 1e-2;
  EXPECT_EQ(math_equal("3.14", "\\pi", loose), MathVerdict::kEqual);
  EXPECT_EQ(math_equal("3.14", "\\pi"), MathVerdict::kNotEqual);
  MathOptions no_percent;
  no_percent.percent_equiv = false;
  EXPECT_EQ(math_equal("50\\%", "50", no_percent), MathVerdict::kNotEqual);
}

// Adversarial inputs: each must return within the bound, as unparsable or a verdict.
TEST(MathEqual, PathologicalInputsAreBounded) {
  std::string deep(5000, '(');
  std::string nested;
  for (int i = 0; i < 200; ++i) nested += "\\frac{1}{";
  nested += "2";
  for (int i = 0; i < 200; ++i) nested += "}";
  std::string towers = "2";
  for (int i = 0; i < 60; ++i) towers = "2^{" + towers + "}";
  std::string long_sum;
  for (int i = 0; i < 900; ++i) long_sum += "x+";
  long_sum += "1";
  const std::string inputs[] = {
      "10^{10^{10^{10}}}", "9^{9^{9^{9^{9}}}}", "1000000!", "(10^{100})!", "100!!!!!!",
      deep, nested, towers, long_sum, std::string(3999, '1'), std::string(10000, '9'),
      "\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}}",
      "x^{x^{x^{x^{x^{x^{x^{x}}}}}}}", "\\binom{100000}{50000}", "2^{-10^{9}}",
      "1e99999999999999999999", "1e-99999999999999999999", "0.123456789012\\overline{123456789}",
      std::string(2000, '{') + "1" + std::string(2000, '}'), "\\frac{1}{0}", "0^{-1}", "(-8)^{1/3}",
      "\\sqrt{-1}", "\\ln(0)", "0/0",
  };
  for (const auto& in : inputs) {
    for (const char* gold : {"1", "x"}) {
      auto t0 = std::chrono::steady_clock::now();
      MathVerdict v = math_equal(in, gold);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count();
      EXPECT_LT(ms, 500.0) << in.substr(0, 60) << " took " << ms << " ms";
      EXPECT_NE(v, MathVerdict::kEqual) << in.substr(0, 60);
    }
  }
}

// The wall-clock limit is enforced: work that fits the step budget still stops at the deadline.
TEST(MathEqual, TimeLimitTurnsSlowChecksUnparsable) {
  std::string a, b;
  for (int i = 0; i < 300; ++i) {
    a += "x^" + std::to_string(i % 7) + "+";
    b += "x^" + std::to_string((299 - i) % 7) + "+";
  }
  a += "1";
  b += "1";
  EXPECT_EQ(math_equal(a, b), MathVerdict::kEqual);
  MathOptions hurried;
  hurried.time_limit_ms = 1e-6;
  EXPECT_EQ(math_equal(a, b, hurried), MathVerdict::kUnparsable);
}

// Random LaTeX-ish soup: the checker must never throw, crash or run long.
TEST(MathEqual, FuzzNeverThrowsAndStaysBounded) {
  const char* pieces[] = {"1", "23", "0.5", "x", "y", "e", "\\pi", "+", "-", "*", "/", "^", "(",
                          ")", "[", "]", "\\{", "\\}", "{", "}", ",", "=", "<", "!", "%",
                          "\\frac", "\\sqrt", "\\sin", "\\log_", "\\cup", "\\pm",
                          "\\infty", "\\text{cm}", "\\left(", "\\right)", " ", "&", "\\\\",
                          "\\begin{pmatrix}", "\\end{pmatrix}", "\\overline{3}", "1e5", "|",
                          "\\binom", "\\boxed{", "#### ", "$", "\\dfrac12", "3 1/2"};
  Rng rng(7);
  auto t0 = std::chrono::steady_clock::now();
  int equal = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string a, b;
    for (uint64_t k = 0, n = 1 + rng.below(12); k < n; ++k) a += pieces[rng.below(std::size(pieces))];
    for (uint64_t k = 0, n = 1 + rng.below(12); k < n; ++k) b += pieces[rng.below(std::size(pieces))];
    MathVerdict v = MathVerdict::kUnparsable;
    EXPECT_NO_THROW(v = math_equal(a, b)) << a << " | " << b;
    EXPECT_EQ(math_equal(a, a), math_equal(a, a)) << a;  // deterministic
    equal += v == MathVerdict::kEqual;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 10.0);
  EXPECT_LT(equal, 300);  // random pairs are almost never equal
}

// A random arithmetic expression in LaTeX and its value computed here, independently.
struct Expr {
  std::string latex;
  double value;
};

Expr random_expr(Rng& rng, int depth) {
  if (depth == 0 || rng.below(4) == 0) {
    int v = static_cast<int>(rng.below(19)) - 9;
    return {v < 0 ? "(" + std::to_string(v) + ")" : std::to_string(v), static_cast<double>(v)};
  }
  Expr a = random_expr(rng, depth - 1);
  Expr b = random_expr(rng, depth - 1);
  switch (rng.below(7)) {
    case 0: return {a.latex + "+" + b.latex, a.value + b.value};
    case 1: return {a.latex + "-\\left(" + b.latex + "\\right)", a.value - b.value};
    case 2: return {"(" + a.latex + ")\\cdot(" + b.latex + ")", a.value * b.value};
    case 3: return {"(" + a.latex + ")(" + b.latex + ")", a.value * b.value};
    case 4:
      if (b.value == 0) return a;
      return {"\\frac{" + a.latex + "}{" + b.latex + "}", a.value / b.value};
    case 5: {
      int k = static_cast<int>(rng.below(4));
      return {"(" + a.latex + ")^{" + std::to_string(k) + "}", std::pow(a.value, k)};
    }
    default:
      if (a.value < 0) return b;
      return {"\\sqrt{" + a.latex + "}", std::sqrt(a.value)};
  }
}

// The parser and evaluator against an independent evaluation of random expressions.
TEST(MathEqual, RandomExpressionsMatchAnIndependentEvaluation) {
  Rng rng(11);
  int checked = 0;
  for (int i = 0; i < 2000; ++i) {
    Expr e = random_expr(rng, 4);
    if (!std::isfinite(e.value) || std::fabs(e.value) > 1e9) continue;
    char right[64], wrong[64];
    std::snprintf(right, sizeof(right), "%.15g", e.value);
    std::snprintf(wrong, sizeof(wrong), "%.15g", e.value + 1e-3 * std::max(1.0, std::fabs(e.value)));
    EXPECT_EQ(math_equal(e.latex, right), MathVerdict::kEqual) << e.latex << " = " << right;
    EXPECT_EQ(math_equal(e.latex, wrong), MathVerdict::kNotEqual) << e.latex << " != " << wrong;
    ++checked;
  }
  EXPECT_GT(checked, 1500);
}

TEST(MathEqual, HugeExactValuesCompareExactly) {
  EXPECT_EQ(math_equal("\\frac{10!}{9!}", "10"), MathVerdict::kEqual);
  EXPECT_EQ(math_equal("30!", "265252859812191058636308480000000"), MathVerdict::kEqual);
  EXPECT_EQ(math_equal("30!", "265252859812191058636308480000001"), MathVerdict::kNotEqual);
}

}  // namespace
}  // namespace aha::rewards
