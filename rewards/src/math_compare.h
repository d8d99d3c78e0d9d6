// Private to the math checker: the comparer that walks two parsed answers together. Its parts
// live in one file per concept: structure (math_equal.cpp), equations and their solutions
// (math_solve.cpp), inequalities and intervals (math_relations.cpp), scalars (math_scalars.cpp).
#pragma once

#include <string>
#include <vector>

#include "math_internal.h"

namespace aha::rewards::detail {

enum class Cmp { kEqual, kNotEqual, kInvalid };

bool is_collection(K k);

// A name an answer labels its value with (Math-Verify's "only symbols" left side): a variable
// ("x_1"), names combined without numbers ("AB", "V_1 : V_2", "(p, q)", "|AB|"), or a function
// of a single letter applied to something ("f(2)", "P(A)"), which parses as a product.
bool is_label(const Tree& t, int i);
bool is_function_label(const Tree& t, int i);

// Not thread-safe; one per check. `ta_` is the prediction unless inside swapped().
class Comparer {
 public:
  Comparer(const Tree& a, const Tree& b, const MathOptions& o, Budget& budget)
      : ta_(a), tb_(b), o_(o), budget_(budget) {}

  Cmp compare(int a, int b);

 private:
  // One end of an interval read off an inequality: a bound node (-1: infinite) and closedness.
  struct End {
    int node = -1;
    bool closed = false;
  };

  // structure (math_equal.cpp)
  Cmp swapped(int a, int b);  // a node of tb_ against one of ta_
  Cmp scalars_swapped(int a_inner, int b);
  Cmp in_order(const std::vector<int>& xs, const std::vector<int>& ys);
  Cmp any_order(const std::vector<int>& xs, const std::vector<int>& ys);
  bool gold_order_matters(int a, int b);
  Cmp each_matched(const std::vector<int>& from, const std::vector<int>& to, bool from_a,
                   bool distinct);
  static bool set_elements(const Tree& t, int idx, std::vector<int>& out);
  Cmp collections(int a, int b);
  Cmp pm_set(int scalar, int set, bool scalar_in_a);

  // equations (math_solve.cpp)
  Cmp equations(int a, int b);
  Cmp solutions(int a, int b);
  void dedupe(std::vector<Value>& vs) const;
  static bool has_var(const Tree& t, int idx);
  bool solve(const Tree& t, int idx, std::vector<Value>& roots, std::string& var);
  bool answer_values(const Tree& t, int idx, const std::string& var, std::vector<Value>& out,
                     int depth);
  // kEqual when lhs - rhs of x is `ratio` times that of y at every sampled point
  Cmp proportional(const Node& x, const Node& y, double& ratio);

  // relations (math_relations.cpp)
  static bool rel_to_interval(const Tree& t, int idx, End& lo, End& hi);
  Cmp rel_vs_interval(const Tree& tr, int rel, const Tree& ti, int interval, bool rel_in_a);
  Cmp relations(int a, int b);
  Cmp rel_vs_set(const Tree& tr, int rel, const Tree& ts, int set, bool rel_in_a);
  Cmp membership(const Tree& tr, int rel, const Tree& ts, int other);

  // scalars (math_scalars.cpp)
  Cmp values_equal(const Value& x, const Value& y) const;
  Cmp scalars(int a, int b);
  Cmp real_scalars(int a, int b);
  Cmp complex_scalars(int a, int b);

  const Tree& ta_;
  bool a_is_pred_ = true;  // ta_ is the prediction (false inside swapped())
  const Tree& tb_;
  const MathOptions& o_;
  Budget& budget_;
};

}  // namespace aha::rewards::detail
