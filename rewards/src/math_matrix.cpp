// Matrix arithmetic on literals for the math checker: "A + B", "A - B", "A B", "2A" of written
// matrices fold into one matrix whose entries are expression nodes (compared entry by entry
// later), so "\begin{pmatrix}1&2\\3&4\end{pmatrix} + \begin{pmatrix}5&6\\7&8\end{pmatrix}"
// equals the matrix of sums. Node and budget limits bound the fold like the rest of parsing.
#include <vector>

#include "math_internal.h"

namespace aha::rewards::detail {
namespace {

constexpr size_t kMaxNodes = 4000;

int push(Tree& t, Node n, Budget& budget) {
  if (t.nodes.size() >= kMaxNodes || !budget.step()) return -1;
  t.nodes.push_back(std::move(n));
  return static_cast<int>(t.nodes.size()) - 1;
}

int binary(Tree& t, K kind, int a, int b, Budget& budget) {
  if (a < 0 || b < 0) return -1;
  Node n;
  n.kind = kind;
  n.a = a;
  n.b = b;
  return push(t, std::move(n), budget);
}

// The entries of the result, row-major; false when a node could not be made.
bool entries(Tree& t, K kind, int a, int b, std::vector<int>& out, int& rows, int& cols,
             Budget& budget) {
  const Node x = t.nodes[a];
  const Node y = t.nodes[b];
  const bool mx = x.kind == K::kMatrix, my = y.kind == K::kMatrix;
  if (mx && my && kind != K::kMul) {  // A + B, A - B: same shape
    if (x.rows != y.rows || x.cols != y.cols) return false;
    rows = x.rows;
    cols = x.cols;
    for (size_t i = 0; i < x.kids.size(); ++i)
      out.push_back(binary(t, kind, x.kids[i], y.kids[i], budget));
  } else if (mx && my) {  // A B: inner sizes agree
    if (x.cols != y.rows) return false;
    rows = x.rows;
    cols = y.cols;
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        int sum = -1;
        for (int k = 0; k < x.cols; ++k) {
          int term = binary(t, K::kMul, x.kids[r * x.cols + k], y.kids[k * y.cols + c], budget);
          sum = sum < 0 ? term : binary(t, K::kAdd, sum, term, budget);
          if (term < 0 || sum < 0) return false;
        }
        out.push_back(sum);
      }
    }
  } else {  // 2A or A 2: a scalar times every entry
    if (kind != K::kMul) return false;
    const Node& m = mx ? x : y;
    rows = m.rows;
    cols = m.cols;
    for (int k : m.kids)
      out.push_back(mx ? binary(t, kind, k, b, budget) : binary(t, kind, a, k, budget));
  }
  for (int k : out) {
    if (k < 0) return false;
  }
  return true;
}

}  // namespace

int fold_matrices(Tree& t, K kind, int a, int b, Budget& budget) {
  if (a < 0 || b < 0 || (kind != K::kAdd && kind != K::kSub && kind != K::kMul)) return -2;
  const Node& x = t.nodes[a];
  const Node& y = t.nodes[b];
  const bool mx = x.kind == K::kMatrix, my = y.kind == K::kMatrix;
  if (!mx && !my) return -2;
  // a scalar factor must be a plain value, not a tuple or set
  const Node& other = mx ? y : x;
  if (!(mx && my) &&
      (other.kind == K::kTuple || other.kind == K::kSet || other.kind == K::kInterval ||
       other.kind == K::kUnion || other.kind == K::kEq || other.kind == K::kRel)) {
    return -2;
  }
  std::vector<int> out;
  int rows = 0, cols = 0;
  if (!entries(t, kind, a, b, out, rows, cols, budget)) return -2;
  Node m;
  m.kind = K::kMatrix;
  m.rows = rows;
  m.cols = cols;
  m.kids = std::move(out);
  return push(t, std::move(m), budget);
}

}  // namespace aha::rewards::detail
