// Recursive-descent parser for normalised answers: arithmetic with implicit
// multiplication, \frac/\sqrt/\binom, functions, factorial, percent, \pm, tuples, intervals,
// sets, unions, matrices, equations and relations. Depth and work are bounded by the Budget.
#include <cctype>
#include <cstring>
#include <string>

#include "math_tokens.h"

namespace aha::rewards::detail {
namespace {

class Parser {
 public:
  Parser(std::vector<Token>& tokens, Tree& tree, Budget& budget)
      : toks_(tokens), tree_(tree), budget_(budget) {}

  bool run() {
    std::vector<int> items;
    if (!list(items, "")) return false;
    if (peek().type != T::kEnd) return false;
    if (items.size() == 1) {
      tree_.root = items[0];
    } else {
      tree_.root = collection(K::kSet, std::move(items));
      if (tree_.root >= 0) tree_.nodes[tree_.root].bare = true;
    }
    return budget_.ok();
  }

 private:
  static constexpr int kMaxDepth = 64;
  static constexpr size_t kMaxNodes = 4000;

  const Token& peek(size_t ahead = 0) const {
    size_t i = pos_ + ahead;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  bool is_sym(const char* s, size_t ahead = 0) const {
    const Token& t = peek(ahead);
    return t.type == T::kSym && t.text == s;
  }
  bool is_cmd(const char* s) const { return peek().type == T::kCmd && peek().text == s; }
  bool accept(const char* s) {
    if (!is_sym(s)) return false;
    ++pos_;
    return true;
  }

  int add(Node n) {
    if (tree_.nodes.size() >= kMaxNodes || !budget_.step()) return -1;
    tree_.nodes.push_back(std::move(n));
    return static_cast<int>(tree_.nodes.size()) - 1;
  }
  int binary(K kind, int a, int b) {
    if (a < 0 || b < 0) return -1;
    if (int m = fold_matrices(tree_, kind, a, b, budget_); m != -2) return m;
    Node n;
    n.kind = kind;
    n.a = a;
    n.b = b;
    return add(std::move(n));
  }
  int unary(K kind, int a) { return binary(kind, a, a) < 0 ? -1 : fix_unary(); }
  int fix_unary() {
    tree_.nodes.back().b = -1;
    return static_cast<int>(tree_.nodes.size()) - 1;
  }
  int collection(K kind, std::vector<int> kids) {
    Node n;
    n.kind = kind;
    n.kids = std::move(kids);
    return add(std::move(n));
  }

  struct DepthGuard {
    int& d;
    explicit DepthGuard(int& depth) : d(depth) { ++d; }
    ~DepthGuard() { --d; }
  };

  // Comma-separated items up to (not including) a closer symbol or the end.
  bool list(std::vector<int>& items, const char* closer) {
    while (true) {
      if (*closer != 0 && is_sym(closer)) return true;
      int item = relation();
      if (item < 0) return false;
      items.push_back(item);
      if (!accept(",") && !accept(";")) return true;
    }
  }

  // "a : b", a ratio, is the quotient a / b.
  int ratio() {
    int left = congruence_class(expr());
    while (left >= 0 && accept(":")) {
      left = binary(K::kDiv, left, congruence_class(expr()));
      if (left >= 0) tree_.nodes[left].ratio = true;
    }
    return left;
  }

  // "a \pmod{n}" after a side: the class of a modulo n.
  int congruence_class(int left) {
    if (left < 0 || !is_cmd("pmod")) return left;
    ++pos_;
    left = binary(K::kMod, left, unary_minus());
    if (left >= 0) tree_.nodes[left].congruence = true;
    return left;
  }

  // The next "=" at bracket depth 0 from pos_, or npos.
  size_t next_top_level_eq() const {
    int depth = 0;
    for (size_t k = pos_; k < toks_.size() && toks_[k].type != T::kEnd; ++k) {
      if (toks_[k].type != T::kSym) continue;
      const std::string& x = toks_[k].text;
      if (x == "(" || x == "[" || x == "{" || x == "\\{") ++depth;
      if (x == ")" || x == "]" || x == "}" || x == "\\}") --depth;
      if (depth < 0) return std::string::npos;
      if (depth == 0 && x == "=") return k;
    }
    return std::string::npos;
  }

  int relation() {
    int left = ratio();
    bool dropped = false;  // a middle side of a chain did not parse ("1 = \zzz = x = 0")
    while (left >= 0) {
      const Token& t = peek();
      if (t.type != T::kSym) break;
      const std::string& op = t.text;
      if (op != "=" && op != "<" && op != ">" && op != "<=" && op != ">=" && op != "!=") break;
      std::string name = op;
      ++pos_;
      const size_t side = pos_;
      int right = ratio();
      if (right < 0 && name == "=") {
        // a chain is read by its ends, so a middle side need not parse (Math-Verify's reading)
        pos_ = side;
        size_t next = next_top_level_eq();
        if (next == std::string::npos) return -1;
        pos_ = next;
        dropped = true;
        continue;
      }
      if (right < 0) return -1;
      if (name == "=") {
        // a chain "x = 2 + 3 = 5" keeps the first left side and the last right side
        const bool was_eq = tree_.nodes[left].kind == K::kEq;
        int lhs = was_eq ? tree_.nodes[left].a : left;
        bool chain = was_eq || dropped;
        left = binary(K::kEq, lhs, right);
        if (left >= 0) tree_.nodes[left].chain = chain;
      } else {
        left = binary(K::kRel, left, right);
        if (left >= 0) tree_.nodes[left].name = name;
      }
    }
    return left;
  }

  int expr() {
    int left = sum();
    while (left >= 0 && is_cmd("cup")) {
      ++pos_;
      int right = sum();
      if (right < 0) return -1;
      std::vector<int> kids;
      for (int side : {left, right}) {
        if (tree_.nodes[side].kind == K::kUnion) {
          for (int k : tree_.nodes[side].kids) kids.push_back(k);
        } else {
          kids.push_back(side);
        }
      }
      left = collection(K::kUnion, std::move(kids));
    }
    return left;
  }

  int sum() {
    int left = term();
    while (left >= 0) {
      K kind;
      if (is_sym("+")) {
        kind = K::kAdd;
      } else if (is_sym("-")) {
        kind = K::kSub;
      } else if (is_cmd("pm") || is_cmd("mp")) {
        kind = K::kPm;
      } else {
        break;
      }
      ++pos_;
      left = binary(kind, left, term());
    }
    return left;
  }

  bool starts_implicit() const {
    const Token& t = peek();
    switch (t.type) {
      case T::kNum:
      case T::kVar:
        return true;
      case T::kSym:
        return t.text == "(" || t.text == "{";
      case T::kCmd:
        return t.text != "cup" && t.text != "pm" && t.text != "mp" && t.text != "end" &&
               t.text != "cap" && t.text != "setminus" && t.text != "rfloor" && t.text != "rceil" &&
               t.text != "pmod";
      default:
        return false;
    }
  }

  static bool is_int_literal(const Node& n) {
    return n.kind == K::kNum && n.exact && n.q.den == 1 && !n.percent;
  }

  int term() {
    int left = unary_minus();
    while (left >= 0) {
      if (accept("*")) {
        left = binary(K::kMul, left, unary_minus());
      } else if (accept("/")) {
        left = binary(K::kDiv, left, unary_minus());
      } else if (is_cmd("bmod") || is_cmd("mod")) {
        ++pos_;
        left = binary(K::kMod, left, unary_minus());
      } else if (starts_implicit()) {
        const T type = peek().type;
        bool frac_next = type == T::kCmd && peek().text == "frac";
        bool slash_next = type == T::kNum && peek().space_before && is_sym("/", 1) &&
                          peek(2).type == T::kNum;
        bool mixed = is_int_literal(tree_.nodes[left]) && (frac_next || slash_next);
        // "2 3" is not an answer; "2! 8!" and "x 2" are products
        if (type == T::kNum && !mixed && tree_.nodes[left].kind == K::kNum) return -1;
        int right = unary_minus();
        if (right >= 0 && slash_next && mixed) {
          ++pos_;  // "/"
          right = binary(K::kDiv, right, unary_minus());
        }
        if (right < 0) return -1;
        const Node& r = tree_.nodes[right];
        // 3\frac{1}{2} and "3 1/2" are mixed numbers; 2\frac{\pi}{3} is a product
        if (mixed && r.kind == K::kDiv && is_int_literal(tree_.nodes[r.a]) &&
            is_int_literal(tree_.nodes[r.b])) {
          left = binary(K::kAdd, left, right);
        } else {
          left = binary(K::kMul, left, right);
        }
      } else {
        break;
      }
    }
    return left;
  }

  int unary_minus() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return -1;
    if (accept("-")) return unary(K::kNeg, unary_minus());
    if (accept("+")) return unary_minus();
    if (is_cmd("pm")) {  // "\pm 1"
      ++pos_;
      Node zero;
      zero.kind = K::kNum;
      return binary(K::kPm, add(std::move(zero)), unary_minus());
    }
    return power();
  }

  int power() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth) return -1;
    int base = postfix();
    if (base < 0 || !accept("^")) return base;
    int exponent;
    if (accept("-")) {
      exponent = unary(K::kNeg, power());
    } else {
      exponent = power();
    }
    return postfix_ops(binary(K::kPow, base, exponent));
  }

  int postfix_ops(int node) {
    while (node >= 0) {
      if (accept("`")) {  // degrees: radians inside a trig function, the number elsewhere
        if (trig_depth_ > 0) node = binary(K::kMul, node, degree());
      } else if (accept("!")) {
        node = unary(K::kFact, node);
      } else if (accept("%")) {
        node = unary(K::kPercent, node);
      } else {
        break;
      }
    }
    return node;
  }

  int postfix() { return postfix_ops(primary()); }

  int degree() {  // pi / 180
    Node n;
    n.kind = K::kNum;
    n.q = Q{180, 1};
    return binary(K::kDiv, leaf(K::kPi), add(std::move(n)));
  }

  int number(const std::string& text) { return add(number_literal(text)); }

  int variable(std::string name) {
    Node n;
    n.kind = K::kVar;
    n.name = std::move(name);
    return add(std::move(n));
  }

  int leaf(K kind) {
    Node n;
    n.kind = kind;
    return add(std::move(n));
  }

  // A command argument: {expr}, or one token ("\frac12", "\sqrt2", "\sqrt x").
  int argument() {
    if (accept("{")) {
      int e = relation();
      if (e < 0 || !accept("}")) return -1;
      return e;
    }
    const Token& t = peek();
    if (t.type == T::kNum && t.text.size() > 1 && t.text.find_first_not_of("0123456789") ==
                                                      std::string::npos) {
      // "\frac12": the first digit only; the rest stays for the next argument
      std::string first = t.text.substr(0, 1);
      toks_[pos_].text.erase(0, 1);
      toks_[pos_].space_before = false;
      return number(first);
    }
    return primary();
  }

  int bracketed(const std::string& open) {
    std::vector<int> items;
    if (!list(items, ")") && items.empty()) return -1;
    std::string close = peek().text;
    if (peek().type != T::kSym || (close != ")" && close != "]")) return -1;
    ++pos_;
    if (items.empty()) return -1;
    if (items.size() == 1) return items[0];
    if (items.size() == 2 && !(open == "(" && close == ")")) {
      int n = collection(K::kInterval, std::move(items));
      if (n >= 0) {
        tree_.nodes[n].lo_closed = open == "[";
        tree_.nodes[n].hi_closed = close == "]";
      }
      return n;
    }
    return collection(K::kTuple, std::move(items));
  }

  int matrix() {
    if (!accept("{")) return -1;
    std::string env;
    while (peek().type != T::kEnd && !is_sym("}")) env += peek(0).text, ++pos_;
    if (!accept("}")) return -1;
    if (env == "array" && accept("{")) {  // column spec
      while (peek().type != T::kEnd && !is_sym("}")) ++pos_;
      if (!accept("}")) return -1;
    }
    std::vector<int> kids;
    int rows = 0, cols = 0, col = 0;
    while (true) {
      if (is_cmd("end")) break;
      int cell = relation();
      if (cell < 0) return -1;
      kids.push_back(cell);
      ++col;
      if (accept("&")) continue;
      if (rows == 0) cols = col;
      if (col != cols) return -1;
      ++rows;
      col = 0;
      if (accept("\\\\")) continue;
      if (!is_cmd("end")) return -1;
    }
    ++pos_;  // \end
    if (!accept("{")) return -1;
    while (peek().type != T::kEnd && !is_sym("}")) ++pos_;
    if (!accept("}") || rows == 0) return -1;
    int n = collection(K::kMatrix, std::move(kids));
    if (n >= 0) {
      tree_.nodes[n].rows = rows;
      tree_.nodes[n].cols = cols;
    }
    return n;
  }

  int function(std::string name) {
    int power_of = -1;
    int base = -1;
    if (name == "log" && accept("_")) base = argument();
    if (accept("^")) {
      if (is_sym("{") && is_sym("-", 1) && peek(2).type == T::kNum && peek(2).text == "1" &&
          is_sym("}", 3) && (name == "sin" || name == "cos" || name == "tan")) {
        pos_ += 4;  // \cos^{-1}: the inverse function
        name = "arc" + name;
      } else {
        power_of = argument();
      }
    }
    static constexpr const char* kTrig[] = {"sin", "cos", "tan", "sec", "csc", "cot"};
    bool trig = false;
    for (const char* t : kTrig) trig |= name == t;
    trig_depth_ += trig;
    int arg = is_sym("(") || is_sym("{") ? primary() : power();
    // "\sin 2x", "\cos \pi x": a bare argument runs on over letters and constants
    while (arg >= 0 && !is_sym("(") && !is_sym("{") &&
           (peek().type == T::kVar || is_cmd("pi") || is_cmd("alpha") || is_cmd("theta"))) {
      arg = binary(K::kMul, arg, power());
    }
    trig_depth_ -= trig;
    if (arg < 0) return -1;
    Node n;
    n.kind = K::kFunc;
    n.name = std::move(name);
    n.a = arg;
    n.b = base;
    int f = add(std::move(n));
    if (power_of >= 0) f = binary(K::kPow, f, power_of);
    return f;
  }

  // \sum_{k=a}^{b} body, \prod_{k=a}^{b} body: kFunc "sum"/"prod" of the body, kids {k, a, b}.
  // The body is one product term, as usually read: \sum_{k=1}^{n} k^2 + 1 adds 1 once.
  int index_range(const std::string& name) {
    if (!accept("_") || !accept("{") || peek().type != T::kVar) return -1;
    int index = variable(peek().text);
    ++pos_;
    if (index < 0 || !accept("=")) return -1;
    int lo = sum();
    if (lo < 0 || !accept("}") || !accept("^")) return -1;
    int hi = argument();
    if (hi < 0) return -1;
    int body = term();
    if (body < 0) return -1;
    Node n;
    n.kind = K::kFunc;
    n.name = name;
    n.a = body;
    n.kids = {index, lo, hi};
    return add(std::move(n));
  }

  int command(const std::string& name) {
    if (name == "frac") {
      int num = argument();
      if (num < 0) return -1;
      return binary(K::kDiv, num, argument());
    }
    if (name == "sqrt") {
      int index = -1;
      if (accept("[")) {
        index = expr();
        if (index < 0 || !accept("]")) return -1;
      }
      int arg = argument();
      if (arg < 0) return -1;
      if (index < 0) {
        Node two;
        two.kind = K::kNum;
        two.q = Q{2, 1};
        index = add(std::move(two));
      }
      Node one;
      one.kind = K::kNum;
      one.q = Q{1, 1};
      int inv = binary(K::kDiv, add(std::move(one)), index);
      return binary(K::kPow, arg, inv);
    }
    if (name == "binom") {
      int n = argument();
      if (n < 0) return -1;
      return binary(K::kBinom, n, argument());
    }
    if (name == "sum" || name == "prod") return index_range(name);
    if (name == "pi") return leaf(K::kPi);
    if (name == "e") return leaf(K::kE);
    if (name == "infty" || name == "inf") return leaf(K::kInf);
    if (name == "begin") return matrix();
    if (name == "lfloor" || name == "lceil") {  // \lfloor x \rfloor, \lceil x \rceil
      int inner = sum();
      const char* close = name == "lfloor" ? "rfloor" : "rceil";
      if (inner < 0 || !is_cmd(close)) return -1;
      ++pos_;
      Node f;
      f.kind = K::kFunc;
      f.name = name == "lfloor" ? "floor" : "ceil";
      f.a = inner;
      return add(std::move(f));
    }
    if (is_function(name)) return function(name);
    static constexpr const char* kGreek[] = {
        "alpha", "beta", "gamma", "delta", "theta", "lambda", "mu", "sigma", "phi",
        "omega", "epsilon", "varepsilon", "rho", "tau", "eta", "zeta", "xi", "psi", "varphi"};
    for (const char* g : kGreek) {
      if (name == g) return variable(name);
    }
    return -1;
  }

  int primary() {
    DepthGuard g(depth_);
    if (depth_ > kMaxDepth || !budget_.step()) return -1;
    Token t = peek();
    ++pos_;
    switch (t.type) {
      case T::kNum:
        return number(t.text);
      case T::kVar:
        return variable(t.text);
      case T::kCmd:
        return command(t.text);
      case T::kSym:
        break;
      default:
        return -1;
    }
    if (t.text == "(" || t.text == "[") return bracketed(t.text);
    if (t.text == "{" || t.text == "\\{") {
      const char* close = t.text == "{" ? "}" : "\\}";
      std::vector<int> items;
      if (!list(items, close) || !accept(close)) return -1;
      if (t.text == "{" && items.size() == 1) return items[0];
      int set = collection(K::kSet, std::move(items));
      // "{1,3}" without backslashes is a LaTeX group around a list, not a set
      if (set >= 0 && t.text == "{") tree_.nodes[set].bare = true;
      return set;
    }
    if (t.text == "|") {
      int inner = sum();
      if (inner < 0 || !accept("|")) return -1;
      return unary(K::kAbs, inner);
    }
    return -1;
  }

  std::vector<Token>& toks_;
  Tree& tree_;
  Budget& budget_;
  size_t pos_ = 0;
  int depth_ = 0;
  int trig_depth_ = 0;  // > 0 inside the argument of sin, cos, ...
};

}  // namespace

bool parse(std::string_view normalized, Tree& out, Budget& budget) {
  std::vector<Token> tokens;
  if (!tokenize(normalized, tokens, budget)) return false;
  if (tokens.size() <= 1) return false;
  out.nodes.clear();
  out.nodes.reserve(tokens.size() + 4);
  Parser parser(tokens, out, budget);
  return parser.run();
}

}  // namespace aha::rewards::detail
