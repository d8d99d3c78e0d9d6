// The sparse KL distillation loss through the LM head: values against a dense computation,
// gradients w.r.t. h, the head and (through Model::backward's dh_final) every parameter
// against central finite differences in double precision.
#include "aha/distill/kd_loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "aha/policy/model.h"
#include "policy/test_configs.h"

namespace aha::distill {
namespace {

using policy::Activations;
using policy::Batch;
using policy::ForwardOptions;
using policy::Model;
using policy::ModelConfig;

struct Case {
  int n = 5, dim = 6, vocab = 11, k = 4;
  std::vector<double> h, w;
  SparseTargets tg;
};

std::vector<double> log_softmax(const std::vector<double>& z) {
  double mx = *std::max_element(z.begin(), z.end()), s = 0;
  for (double v : z) s += std::exp(v - mx);
  std::vector<double> out(z.size());
  for (size_t i = 0; i < z.size(); ++i) out[i] = z[i] - mx - std::log(s);
  return out;
}

Case make_case(int k, uint64_t seed) {
  Case c;
  c.k = k;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  c.h.resize(c.n * c.dim);
  c.w.resize(c.vocab * c.dim);
  for (double& v : c.h) v = nd(rng);
  for (double& v : c.w) v = nd(rng) * 0.7;
  std::vector<double> tl(c.n * c.vocab);
  for (int r = 0; r < c.n; ++r) {
    std::vector<double> z(c.vocab);
    for (double& v : z) v = 2.0 * nd(rng);
    for (int j = 0; j < c.vocab; ++j) tl[r * c.vocab + j] = z[j];
  }
  std::vector<float> weight = {0.5f, 1.0f, 0.0f, 2.0f, 1.0f};  // row 2 is out of the loss
  append_topk_logprobs(tl.data(), c.n, c.vocab, k, weight.data(), c.tg);
  return c;
}

// The KL of one row computed densely from its definition (the test's oracle).
double dense_kl(const Case& c, int r, const KlOptions& o) {
  std::vector<double> z(c.vocab);
  for (int j = 0; j < c.vocab; ++j) {
    for (int d = 0; d < c.dim; ++d) z[j] += c.h[r * c.dim + d] * c.w[j * c.dim + d];
  }
  std::vector<double> lq = log_softmax(z);
  std::vector<double> pb, qb;  // bucket masses
  const int64_t o0 = c.tg.offsets[r];
  std::vector<char> in(c.vocab, 0);
  double p_top = 0;
  for (int i = 0; i < c.k; ++i) {
    int id = c.tg.ids[o0 + i];
    in[id] = 1;
    pb.push_back(std::exp(double(c.tg.logprobs[o0 + i])));  // as stored: float
    qb.push_back(std::exp(lq[id]));
    p_top += pb.back();
  }
  const bool tail = (o.tail || o.direction == KlDirection::kReverse) && c.k < c.vocab;
  if (tail) {
    double q_rest = 0;
    for (int j = 0; j < c.vocab; ++j) q_rest += in[j] ? 0.0 : std::exp(lq[j]);
    pb.push_back(std::max(1.0 - p_top, o.direction == KlDirection::kReverse ? 1e-8 : 0.0));
    qb.push_back(q_rest);
  } else {
    for (double& p : pb) p /= p_top;
  }
  double kl = 0;
  for (size_t b = 0; b < pb.size(); ++b) {
    if (o.direction == KlDirection::kForward) {
      if (pb[b] > 0) kl += pb[b] * (std::log(pb[b]) - std::log(qb[b]));
    } else if (qb[b] > 0) {
      kl += qb[b] * (std::log(qb[b]) - std::log(pb[b]));
    }
  }
  return kl;
}

double loss_of(const Case& c, const KlOptions& o) {
  return sparse_kl_forward_backward<double>(c.h.data(), c.w.data(), c.tg, o, nullptr, nullptr,
                                            c.dim, c.vocab);
}

void check_case(int k, const KlOptions& o) {
  Case c = make_case(k, 7 + k);
  std::vector<double> kl_rows(c.n);
  std::vector<double> dh(c.n * c.dim, 0.0), dw(c.vocab * c.dim, 0.0);
  double total = sparse_kl_forward_backward<double>(c.h.data(), c.w.data(), c.tg, o, dh.data(),
                                                    dw.data(), c.dim, c.vocab, kl_rows.data());
  double want = 0;
  for (int r = 0; r < c.n; ++r) {
    if (c.tg.weight[r] == 0) continue;
    EXPECT_NEAR(kl_rows[r], dense_kl(c, r, o), 1e-12) << "row " << r;
    EXPECT_GE(kl_rows[r], -1e-12);
    want += c.tg.weight[r] * dense_kl(c, r, o);
  }
  EXPECT_NEAR(total, want, 1e-12);
  EXPECT_EQ(kl_rows[2], 0.0) << "a zero-weight row is skipped";
  const double eps = 1e-6;
  auto fd = [&](std::vector<double>& x, size_t i) {
    double keep = x[i];
    x[i] = keep + eps;
    double up = loss_of(c, o);
    x[i] = keep - eps;
    double down = loss_of(c, o);
    x[i] = keep;
    return (up - down) / (2 * eps);
  };
  for (size_t i = 0; i < c.h.size(); ++i) EXPECT_NEAR(dh[i], fd(c.h, i), 1e-7) << "dh " << i;
  for (size_t i = 0; i < c.w.size(); ++i) EXPECT_NEAR(dw[i], fd(c.w, i), 1e-7) << "dw " << i;
}

TEST(KdLoss, ForwardKlWithTailMatchesDenseAndFiniteDifferences) {
  check_case(4, {KlDirection::kForward, true});
}
TEST(KdLoss, ForwardKlRenormalisedTopKMatchesDenseAndFiniteDifferences) {
  check_case(4, {KlDirection::kForward, false});
}
TEST(KdLoss, ReverseKlMatchesDenseAndFiniteDifferences) {
  check_case(3, {KlDirection::kReverse, true});
}
TEST(KdLoss, FullVocabularyIsTheExactKl) {
  check_case(11, {KlDirection::kForward, true});
  check_case(11, {KlDirection::kReverse, true});
}

TEST(KdLoss, StudentEqualToTeacherHasZeroLossAndGradient) {
  Case c = make_case(11, 3);
  // Teacher := the student's own distribution.
  SparseTargets self;
  std::vector<double> logits(c.n * c.vocab, 0.0);
  for (int r = 0; r < c.n; ++r) {
    for (int j = 0; j < c.vocab; ++j) {
      for (int d = 0; d < c.dim; ++d)
        logits[r * c.vocab + j] += c.h[r * c.dim + d] * c.w[j * c.dim + d];
    }
  }
  append_topk_logprobs(logits.data(), c.n, c.vocab, c.vocab, nullptr, self);
  std::vector<double> dh(c.n * c.dim, 0.0), dw(c.vocab * c.dim, 0.0);
  for (auto dir : {KlDirection::kForward, KlDirection::kReverse}) {
    double l = sparse_kl_forward_backward<double>(c.h.data(), c.w.data(), self, {dir, true},
                                                  dh.data(), dw.data(), c.dim, c.vocab);
    EXPECT_NEAR(l, 0.0, 1e-6);
  }
  for (double g : dh) EXPECT_NEAR(g, 0.0, 1e-6);
}

// The loss on the final hidden states feeds Model::backward through dh_final; with the head's
// weight gradient added by the caller, every parameter's gradient matches finite differences.
TEST(KdLoss, ModelBackwardWithDhFinalMatchesFiniteDifferences) {
  Model<double> m(ModelConfig::from_json(policy::testing::tiny_llama_json()));
  m.init_random(5, 0.3);
  Batch b = Batch::from_sequences({{1, 5, 9, 3, 7, 2}, {4, 8, 6}});
  std::vector<double> teacher(b.n_tokens() * 33);
  std::mt19937_64 rng(9);
  std::normal_distribution<double> nd(0.0, 2.0);
  for (double& v : teacher) v = nd(rng);
  std::vector<float> weight = {0, 1, 1, 0.5f, 1, 0, 1, 2, 0};
  SparseTargets tg;
  append_topk_logprobs(teacher.data(), b.n_tokens(), 33, 5, weight.data(), tg);
  const KlOptions o{KlDirection::kForward, true};
  auto loss = [&]() {
    Activations<double> a;
    m.forward(b, ForwardOptions{}, a);
    return sparse_kl_forward_backward<double>(
        a.h_final.data(), m.params().data() + m.lm_head_offset(), tg, o, nullptr, nullptr, 16, 33);
  };
  Activations<double> acts;
  m.forward(b, ForwardOptions{}, acts);
  m.zero_grad();
  std::vector<double> dh(acts.h_final.size(), 0.0);
  sparse_kl_forward_backward<double>(acts.h_final.data(), m.params().data() + m.lm_head_offset(),
                                     tg, o, dh.data(), m.grads().data() + m.lm_head_offset(), 16,
                                     33);
  m.backward(acts, nullptr, nullptr, policy::BalanceWeights{}, dh.data(), nullptr);
  const double eps = 1e-6;
  size_t checked = 0;
  for (size_t i = 0; i < m.params().size(); i += 7) {
    double keep = m.params()[i];
    m.params()[i] = keep + eps;
    double up = loss();
    m.params()[i] = keep - eps;
    double down = loss();
    m.params()[i] = keep;
    double want = (up - down) / (2 * eps);
    EXPECT_NEAR(m.grads()[i], want, 1e-6 * (1 + std::abs(want))) << "param " << i;
    ++checked;
  }
  EXPECT_GT(checked, 100u);
}

}  // namespace
}  // namespace aha::distill

namespace aha::distill {
namespace {

// Against PyTorch autograd of the loss written from its definition
// (tests/reference/gen_kd_loss.py), in float and double.
template <typename T>
void check_reference_cases() {
  Json all = load_json_file(std::string(AHA_TEST_DATA_DIR) + "/kd_loss_cases.json");
  for (const Json& c : all["cases"]) {
    const int n = c["n"], dim = c["dim"], vocab = c["vocab"], k = c["k"];
    auto h = c["h"].get<std::vector<T>>(), w = c["w"].get<std::vector<T>>();
    auto ids = c["ids"].get<std::vector<int32_t>>();
    auto lps = c["logprobs"].get<std::vector<float>>();
    auto weight = c["weight"].get<std::vector<float>>();
    SparseTargets tg;
    for (int r = 0; r < n; ++r) tg.add_row(ids.data() + r * k, lps.data() + r * k, k, weight[r]);
    KlOptions o{c["direction"] == "reverse" ? KlDirection::kReverse : KlDirection::kForward,
                c["tail"].get<bool>()};
    std::vector<T> dh(h.size(), T(0)), dw(w.size(), T(0));
    double loss =
        sparse_kl_forward_backward<T>(h.data(), w.data(), tg, o, dh.data(), dw.data(), dim, vocab);
    const double tol = sizeof(T) == 8 ? 1e-9 : 2e-5;
    EXPECT_NEAR(loss, c["loss"].get<double>(), tol * (1 + std::abs(c["loss"].get<double>())));
    auto want_dh = c["dh"].get<std::vector<double>>(), want_dw = c["dw"].get<std::vector<double>>();
    for (size_t i = 0; i < dh.size(); ++i) EXPECT_NEAR(dh[i], want_dh[i], tol) << "dh " << i;
    for (size_t i = 0; i < dw.size(); ++i) EXPECT_NEAR(dw[i], want_dw[i], tol) << "dw " << i;
  }
}

TEST(KdLoss, MatchesPyTorchReferenceFp64) { check_reference_cases<double>(); }
TEST(KdLoss, MatchesPyTorchReferenceFp32) { check_reference_cases<float>(); }

}  // namespace
}  // namespace aha::distill
