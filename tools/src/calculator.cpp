// The calculator tool: exact integer arithmetic on big integers (base 1e9 limbs), with bounds
// on the input length, every value's digits and the exponent, so no call can run long.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "aha/tools/tools.h"

namespace aha::tools {

namespace {

constexpr uint32_t kBase = 1000000000;
constexpr size_t kMaxInput = 1000;
constexpr size_t kMaxDigits = 1000;
constexpr int64_t kMaxExponent = 100000;

struct CalcError {
  std::string what;
};

// Sign and magnitude; mag little-endian base 1e9 without leading zero limbs (zero: empty).
struct Big {
  bool neg = false;
  std::vector<uint32_t> mag;

  bool zero() const { return mag.empty(); }
  size_t digits() const {
    if (mag.empty()) return 1;
    size_t d = (mag.size() - 1) * 9;
    for (uint32_t top = mag.back(); top > 0; top /= 10) ++d;
    return d;
  }
  std::string str() const {
    if (mag.empty()) return "0";
    std::string s = std::to_string(mag.back());
    for (size_t i = mag.size() - 1; i-- > 0;) {
      std::string part = std::to_string(mag[i]);
      s += std::string(9 - part.size(), '0') + part;
    }
    return neg ? "-" + s : s;
  }
};

void trim(std::vector<uint32_t>& m) {
  while (!m.empty() && m.back() == 0) m.pop_back();
}

int cmp_mag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t i = a.size(); i-- > 0;) {
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

std::vector<uint32_t> add_mag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<uint32_t> r(std::max(a.size(), b.size()) + 1, 0);
  uint64_t carry = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    uint64_t s = carry + (i < a.size() ? a[i] : 0) + (i < b.size() ? b[i] : 0);
    r[i] = static_cast<uint32_t>(s % kBase);
    carry = s / kBase;
  }
  trim(r);
  return r;
}

// a - b with |a| >= |b|.
std::vector<uint32_t> sub_mag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<uint32_t> r(a.size(), 0);
  int64_t borrow = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    int64_t s = int64_t{a[i]} - borrow - (i < b.size() ? int64_t{b[i]} : 0);
    borrow = s < 0;
    r[i] = static_cast<uint32_t>(s < 0 ? s + kBase : s);
  }
  trim(r);
  return r;
}

std::vector<uint32_t> mul_mag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.empty() || b.empty()) return {};
  std::vector<uint64_t> acc(a.size() + b.size() + 1, 0);
  for (size_t i = 0; i < a.size(); ++i) {
    uint64_t carry = 0;
    for (size_t j = 0; j < b.size(); ++j) {
      uint64_t cur = acc[i + j] + uint64_t{a[i]} * b[j] + carry;
      acc[i + j] = cur % kBase;
      carry = cur / kBase;
    }
    for (size_t k = i + b.size(); carry > 0; ++k) {
      uint64_t cur = acc[k] + carry;
      acc[k] = cur % kBase;
      carry = cur / kBase;
    }
  }
  std::vector<uint32_t> r(acc.begin(), acc.end());
  trim(r);
  return r;
}

std::vector<uint32_t> mul_small(const std::vector<uint32_t>& a, uint32_t m) {
  std::vector<uint32_t> r(a.size() + 1, 0);
  uint64_t carry = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    uint64_t cur = uint64_t{a[i]} * m + carry;
    r[i] = static_cast<uint32_t>(cur % kBase);
    carry = cur / kBase;
  }
  r[a.size()] = static_cast<uint32_t>(carry);
  trim(r);
  return r;
}

// Truncating division of magnitudes: schoolbook, each quotient limb by binary search.
void divmod_mag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b,
                std::vector<uint32_t>& q, std::vector<uint32_t>& r) {
  q.assign(a.size(), 0);
  r.clear();
  for (size_t i = a.size(); i-- > 0;) {
    r.insert(r.begin(), a[i]);
    trim(r);
    uint32_t lo = 0, hi = kBase - 1;
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo + 1) / 2;
      if (cmp_mag(mul_small(b, mid), r) <= 0) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    q[i] = lo;
    if (lo > 0) r = sub_mag(r, mul_small(b, lo));
  }
  trim(q);
}

Big checked(Big v) {
  if (v.zero()) v.neg = false;
  if (v.digits() > kMaxDigits) {
    throw CalcError{"a value exceeds " + std::to_string(kMaxDigits) + " digits"};
  }
  return v;
}

Big add(const Big& a, const Big& b) {
  Big r;
  if (a.neg == b.neg) {
    r.mag = add_mag(a.mag, b.mag);
    r.neg = a.neg;
  } else if (cmp_mag(a.mag, b.mag) >= 0) {
    r.mag = sub_mag(a.mag, b.mag);
    r.neg = a.neg;
  } else {
    r.mag = sub_mag(b.mag, a.mag);
    r.neg = b.neg;
  }
  return checked(r);
}

Big negate(Big a) {
  a.neg = !a.neg;
  return checked(a);
}

Big mul(const Big& a, const Big& b) {
  if (a.digits() + b.digits() > kMaxDigits + 1) {
    throw CalcError{"a value exceeds " + std::to_string(kMaxDigits) + " digits"};
  }
  Big r;
  r.mag = mul_mag(a.mag, b.mag);
  r.neg = a.neg != b.neg;
  return checked(r);
}

// kind: '/' exact, 'f' floor division, '%' floor remainder (Python's signs).
Big divide(const Big& a, const Big& b, char kind) {
  if (b.zero()) throw CalcError{"division by zero"};
  Big q, r;
  divmod_mag(a.mag, b.mag, q.mag, r.mag);
  q.neg = a.neg != b.neg;
  r.neg = a.neg;
  if (kind == '/') {
    if (!r.mag.empty()) {
      throw CalcError{"the division leaves a remainder (the calculator is exact on integers; use // or %)"};
    }
    return checked(q);
  }
  if (!r.mag.empty() && a.neg != b.neg) {  // floor towards -inf
    q = add(q, Big{true, {1}});
    r = add(r, b);
  }
  return checked(kind == 'f' ? q : r);
}

Big power(const Big& a, const Big& e) {
  if (e.neg) throw CalcError{"negative exponent (the calculator is exact on integers)"};
  if (e.mag.size() > 1 || (!e.mag.empty() && e.mag[0] > kMaxExponent)) {
    throw CalcError{"exponent above " + std::to_string(kMaxExponent)};
  }
  int64_t n = e.mag.empty() ? 0 : e.mag[0];
  Big result{false, {1}}, base = a;
  // |a| <= 1 keeps any power small; otherwise bound the digits before multiplying.
  if (cmp_mag(a.mag, {1}) > 0 && double(a.digits() - 1) * double(n) > double(kMaxDigits)) {
    throw CalcError{"a value exceeds " + std::to_string(kMaxDigits) + " digits"};
  }
  while (n > 0) {
    if (n & 1) result = mul(result, base);
    n >>= 1;
    if (n > 0) base = mul(base, base);
  }
  return result;
}

// Recursive descent over the expression:
//   expr := term (('+' | '-') term)*
//   term := unary (('*' | '/' | '//' | '%') unary)*
//   unary := ('-' | '+') unary | pow
//   pow := atom (('**' | '^') unary)?
//   atom := integer | '(' expr ')'
class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Big parse() {
    Big v = expr();
    skip();
    if (i_ != s_.size()) throw CalcError{"unexpected '" + std::string(1, s_[i_]) + "'"};
    return v;
  }

 private:
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
  }
  bool eat(const char* op) {
    skip();
    const std::string o(op);
    if (s_.compare(i_, o.size(), o) != 0) return false;
    i_ += o.size();
    return true;
  }

  Big expr() {
    Big v = term();
    for (;;) {
      if (eat("+")) {
        v = add(v, term());
      } else if (eat("-")) {
        v = add(v, negate(term()));
      } else {
        return v;
      }
    }
  }
  Big term() {
    Big v = unary();
    for (;;) {
      if (eat("**")) {  // not a product: power binds tighter; put it back
        i_ -= 2;
        return v;
      }
      if (eat("*")) {
        v = mul(v, unary());
      } else if (eat("//")) {
        v = divide(v, unary(), 'f');
      } else if (eat("/")) {
        v = divide(v, unary(), '/');
      } else if (eat("%")) {
        v = divide(v, unary(), '%');
      } else {
        return v;
      }
    }
  }
  Big unary() {
    if (++depth_ > 200) throw CalcError{"the expression nests too deeply"};
    Big v;
    if (eat("-")) {
      v = negate(unary());
    } else if (eat("+")) {
      v = unary();
    } else {
      v = pow();
    }
    --depth_;
    return v;
  }
  Big pow() {
    Big base = atom();
    if (eat("**") || eat("^")) return power(base, unary());
    return base;
  }
  Big atom() {
    skip();
    if (eat("(")) {
      Big v = expr();
      if (!eat(")")) throw CalcError{"missing ')'"};
      return v;
    }
    const size_t start = i_;
    while (i_ < s_.size() && ((s_[i_] >= '0' && s_[i_] <= '9') || s_[i_] == '_' || s_[i_] == ',')) ++i_;
    std::string digits;
    for (size_t k = start; k < i_; ++k) {
      if (s_[k] >= '0' && s_[k] <= '9') digits += s_[k];
    }
    if (digits.empty()) {
      if (i_ >= s_.size()) throw CalcError{"the expression ends too early"};
      throw CalcError{"unexpected '" + std::string(1, s_[i_]) + "'"};
    }
    if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) {
      throw CalcError{"only integers are supported"};
    }
    if (digits.size() > kMaxDigits) throw CalcError{"a number exceeds " + std::to_string(kMaxDigits) + " digits"};
    Big v;
    for (size_t end = digits.size(); end > 0; end = end >= 9 ? end - 9 : 0) {
      const size_t begin = end >= 9 ? end - 9 : 0;
      v.mag.push_back(static_cast<uint32_t>(std::stoul(digits.substr(begin, end - begin))));
      if (begin == 0) break;
    }
    trim(v.mag);
    return v;
  }

  const std::string& s_;
  size_t i_ = 0;
  int depth_ = 0;
};

class CalculatorSession : public rollout::ToolSession {
 public:
  rollout::ToolResult call(const std::string& input) override {
    // A <tool_call> passes its arguments as JSON: {"expression": "..."}.
    std::string expr = input;
    Json j = Json::parse(input, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("expression") &&
        j["expression"].is_string()) {
      expr = j["expression"].get<std::string>();
    }
    CalcResult r = calculate(expr);
    if (!r.error.empty()) return {rollout::ToolStatus::kError, "error: " + r.error};
    return {rollout::ToolStatus::kOk, r.value};
  }
};

class Calculator : public rollout::Tool {
 public:
  std::string name() const override { return "calculator"; }
  std::unique_ptr<rollout::ToolSession> open(const std::string&) const override {
    return std::make_unique<CalculatorSession>();
  }
};

}  // namespace

CalcResult calculate(const std::string& expr) {
  if (expr.size() > kMaxInput) {
    return {"", "the expression is longer than " + std::to_string(kMaxInput) + " characters"};
  }
  try {
    return {Parser(expr).parse().str(), ""};
  } catch (const CalcError& e) {
    return {"", e.what};
  }
}

std::unique_ptr<rollout::Tool> make_calculator() { return std::make_unique<Calculator>(); }

}  // namespace aha::tools
