// DeepSeek-V2's device-level and communication balance losses (2.2.2, 2.2.3) on a routing small
// enough to compute by hand; their gradients are checked by finite differences in
// gradcheck_test.cpp (WholeModelDeviceBalanceLosses).
#include <gtest/gtest.h>

#include <cmath>

#include "aha/policy/model.h"
#include "checkpoint_helpers.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

// 4 experts on 2 devices, 2 per token, greedy softmax routing without normalisation.
Json two_device_json(int topk_devices) {
  Json j = testing::device_routing_json(testing::tiny_v2_json(), 4, 2, 2, topk_devices);
  j["device_balance_alpha"] = 0.3;
  j["comm_balance_alpha"] = 0.2;
  return j;
}

// Three tokens whose router probabilities are set through one-hot inputs:
//   A [0.5, 0.25, 0.125, 0.125] -> experts {0, 1}, device 0
//   B [0.1, 0.2,  0.3,   0.4  ] -> experts {3, 2}, device 1
//   C [0.4, 0.35, 0.1,   0.15 ] -> experts {0, 1}, device 0
// T = 3, f_j = 4 / (2 * 3) * [2, 2, 1, 1]; f'_0 = 4/3, f'_1 = 2/3;
// P_j = [1.0, 0.8, 0.525, 0.675] / 3, P'_0 = 0.6, P'_1 = 0.4;
// device = 4/3 * 0.6 + 2/3 * 0.4 = 16/15.
// Tokens sent: device 0 twice (A, C), device 1 once (B): f''_i = 2 / (M * 3) * [2, 1];
// M = 2: comm = 2/3 * 0.6 + 1/3 * 0.4 = 8/15; M = 1: twice that, 16/15 (the same routing:
// every token's two experts are on one device already).
// The statistics are over the whole batch, not per sequence: the same tokens cut into two
// sequences give the same values (seqs: the layout's sequence starts).
void expect_hand_values(int topk_devices, double comm, const std::vector<double>& f_comm,
                        const std::vector<int64_t>& seqs) {
  const ModelConfig c = ModelConfig::from_json(two_device_json(topk_devices));
  Model<double> m(c);
  m.init_random(1, 0.1);
  const LayerP& lp = m.layers().back();
  ASSERT_TRUE(lp.moe);
  const double probs[3][4] = {
      {0.5, 0.25, 0.125, 0.125}, {0.1, 0.2, 0.3, 0.4}, {0.4, 0.35, 0.1, 0.15}};
  const int E = 4, d = c.hidden_size;
  double* gate = m.params().data() + lp.moe_p.gate.w;  // [E, d]
  std::fill(gate, gate + E * d, 0.0);
  for (int t = 0; t < 3; ++t) {
    for (int e = 0; e < E; ++e) gate[e * d + t] = std::log(probs[t][e]);
  }
  std::vector<double> x(3 * d, 0.0), y(3 * d);
  for (int t = 0; t < 3; ++t) x[t * d + t] = 1.0;
  MoeActs<double> a;
  moe_forward(c, lp.moe_p, m.params().data(), x.data(), y.data(), testing::layout_of(seqs), a,
              nullptr, false, nullptr);
  const std::vector<int32_t> want_topk = {0, 1, 3, 2, 0, 1};
  ASSERT_EQ(a.topk, want_topk);
  EXPECT_NEAR(a.device_loss, 16.0 / 15.0, 1e-12);
  EXPECT_NEAR(a.comm_loss, comm, 1e-12);
  // d(0.3 device + 0.2 comm) / d s'_{t,j} = (0.3 f'_i + 0.2 f''_i) / T for j on device i.
  const double f_dev[2] = {4.0 / 3.0, 2.0 / 3.0};
  ASSERT_EQ(a.device_score_grad.size(), 4u);
  for (int j = 0; j < E; ++j) {
    EXPECT_NEAR(a.device_score_grad[j], (0.3 * f_dev[j / 2] + 0.2 * f_comm[j / 2]) / 3.0, 1e-12)
        << "expert " << j;
  }
}

TEST(DeviceBalanceLoss, HandComputedValues) {
  for (const std::vector<int64_t>& seqs : {std::vector<int64_t>{0, 3}, {0, 1, 3}}) {
    expect_hand_values(2, 8.0 / 15.0, {2.0 / 3.0, 1.0 / 3.0}, seqs);
    expect_hand_values(1, 16.0 / 15.0, {4.0 / 3.0, 2.0 / 3.0}, seqs);
  }
}

TEST(DeviceBalanceLoss, BadKeysAreNamed) {
  auto rejects = [](const Json& j, const std::string& needle) {
    testing::expect_error([&] { ModelConfig::from_json(j); }, needle);
  };
  for (const char* key : {"device_balance_alpha", "comm_balance_alpha"}) {
    Json j = two_device_json(2);
    j[key] = -0.1;
    rejects(j, key);
    j = testing::tiny_v2_json();  // one device: the loss would be a constant
    j[key] = 0.1;
    rejects(j, std::string(key) + " > 0 needs n_devices");
  }
  // Written back to config.json and read again.
  const ModelConfig c = ModelConfig::from_json(two_device_json(1));
  const ModelConfig back = ModelConfig::from_json(c.to_json());
  EXPECT_EQ(back.device_balance_alpha, 0.3);
  EXPECT_EQ(back.comm_balance_alpha, 0.2);
}

}  // namespace
}  // namespace aha::policy
