// Private to the math checker: exact rationals, the expression tree and the work budget that
// bounds parsing and evaluation.
#pragma once

#include <chrono>
#include <complex>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "aha/rewards/math.h"

namespace aha::rewards::detail {

using i128 = __int128;

// A rational num/den in lowest terms, den > 0. Operations report overflow instead of wrapping.
struct Q {
  i128 num = 0;
  i128 den = 1;
  double to_double() const { return static_cast<double>(num) / static_cast<double>(den); }
};
bool q_make(i128 num, i128 den, Q& out);  // false on den == 0
bool q_add(const Q& a, const Q& b, Q& out);
bool q_mul(const Q& a, const Q& b, Q& out);
bool q_div(const Q& a, const Q& b, Q& out);
bool q_pow(const Q& a, int64_t k, Q& out);
bool q_root(const Q& a, int64_t n, Q& out);  // exact n-th root when one exists

// A number: exact when `exact`, else only `d` is meaningful.
struct Value {
  bool exact = false;
  Q q;
  double d = 0.0;
  bool approx = false;  // derived from a decimal literal: compare with tolerance
  bool infinity = false;  // the symbol \infty (an overflow to inf is not equal to anything)
  double unc = 0.0;       // half a unit of the last decimal shown, carried through arithmetic
  int decimals = -1;      // fewest decimals among the literals behind unc (-1: none)
  static Value of_q(const Q& q, bool approx = false) {
    return {true, q, q.to_double(), approx, false, 0.0, -1};
  }
  static Value of_d(double d) { return {false, Q{}, d, true, false, 0.0, -1}; }
};

// Bounds the work of one check: a step counter and a wall-clock deadline.
class Budget {
 public:
  Budget(int64_t max_steps, double time_limit_ms)
      : max_steps_(max_steps),
        deadline_(std::chrono::steady_clock::now() +
                  std::chrono::microseconds(static_cast<int64_t>(time_limit_ms * 1000))) {}
  // False once the budget is spent; cheap (the clock is read every 256 steps).
  bool step() {
    if (++steps_ > max_steps_) return false;
    if ((steps_ & 255) == 0 && std::chrono::steady_clock::now() > deadline_) {
      steps_ = max_steps_ + 1;
      return false;
    }
    return true;
  }
  bool ok() const { return steps_ <= max_steps_; }

 private:
  int64_t steps_ = 0;
  int64_t max_steps_;
  std::chrono::steady_clock::time_point deadline_;
};

enum class K : uint8_t {
  kNum, kVar, kPi, kE, kInf,
  kAdd, kSub, kMul, kDiv, kPow, kNeg, kPm, kFact, kPercent, kFunc, kAbs, kBinom,
  kMod,       // a \bmod b: the least non-negative residue (of integers)
  kTuple,     // (a, b) -- also an open interval
  kInterval,  // [a, b), (a, b], [a, b]: flags in lo_closed / hi_closed
  kSet,       // {a, b} or a bare list "a, b": order-insensitive
  kUnion,     // A \cup B
  kMatrix,    // rows x cols, kids row-major
  kEq,        // a = b
  kRel,       // a < b etc.: name holds the operator
};

struct Node {
  K kind = K::kNum;
  bool lo_closed = false;  // kInterval
  bool hi_closed = false;  // kInterval
  bool percent = false;    // kNum written with %
  bool bare = false;       // kSet written without braces ("1, 2")
  bool ratio = false;      // kDiv written as a ratio "a : b"
  bool chain = false;      // kEq written as a chain "a = b = c" (first and last sides kept)
  bool congruence = false; // kMod written as a class "a \pmod{n}": equal classes share n
  int a = -1, b = -1;      // children of unary/binary nodes
  int rows = 0, cols = 0;  // kMatrix
  Q q;                     // kNum exact value (when `exact`)
  bool exact = true;
  bool approx = false;     // kNum written with a decimal point or exponent
  int decimals = -1;       // kNum: digits after the decimal point (no exponent), else -1
  double d = 0.0;          // kNum inexact value
  std::string name;        // kVar name, kFunc name, kRel operator
  std::vector<int> kids;   // collections
};

struct Tree {
  std::vector<Node> nodes;
  int root = -1;
  const Node& at(int i) const { return nodes[i]; }
};

// A variable's value at one evaluation point.
struct Binding {
  std::string name;
  Value value;
};

// What one evaluation sees: the tree, the variable values and the \pm sign choices (bit i
// picks the sign of the i-th \pm node).
struct EvalCtx {
  const Tree& tree;
  const std::vector<Binding>& env;
  unsigned pm_mask;
  Budget& budget;
};

// The scalar value of node idx; nullopt for non-scalars (tuples, sets, equations), unknown
// variables or a spent budget. NaN marks values outside the domain (1/0, sqrt(-1)).
std::optional<Value> eval(EvalCtx& c, int idx);

// Whether the subtree at idx holds a \sum or \prod (its variables are then sampled as integers).
bool has_index_range(const Tree& t, int idx);

// The variables of the subtree at idx (appended when new) and its number of \pm nodes.
void collect_vars(const Tree& t, int idx, std::vector<std::string>& vars, int& n_pm);

// Number spellings (math_numerals.cpp): "1,234,567" / "1 234 567" / "1.000,5" -> "1234567" /
// "1000.5"; ",\!" between digits dropped; "0.1\overline{6}" -> "\frac{1}{6}".
std::string join_thousands(const std::string& s);
void thin_separators(std::string& s);
void repeating_decimals(std::string& s);
// "(\bmod 7)", "(\text{mod } 7)", "\pmod 7" -> "\pmod{7}"; "\text{ mod }" between values -> "\bmod".
void congruences(std::string& s);
// A number token ("12", "0.5", "1e-3") as a leaf: exact where it fits, else a double.
Node number_literal(const std::string& text);

// Normalised LaTeX (spacing, \left/\right, \dfrac, units, degrees, thousands separators...).
std::string normalize(std::string_view s);

// "A + B", "A - B", "A B" or a scalar times A where A, B are matrix nodes of t: a new matrix
// node of entry expressions; -2 when the operands are not matrices of fitting shapes (the
// caller builds the plain node), -1 when a limit is reached.
int fold_matrices(Tree& t, K kind, int a, int b, Budget& budget);

// Parses a normalised answer; false when it is not understood or the budget runs out.
bool parse(std::string_view normalized, Tree& out, Budget& budget);

// The complex value of node idx with `i` the imaginary unit (doubles; nullopt where undefined).
std::optional<std::complex<double>> eval_complex(const Tree& t, int idx,
                                                 const std::vector<Binding>& env, Budget& budget);
bool uses_imaginary_unit(const Tree& t, int idx);

// Structural, exact and numeric comparison of two parsed answers.
MathVerdict compare_trees(const Tree& pred, const Tree& gold, const MathOptions& options,
                          Budget& budget);

}  // namespace aha::rewards::detail
