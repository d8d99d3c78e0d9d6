// Device-limited routing (DeepSeek-V2 2.1.3): every token's experts come from at most
// topk_devices contiguous expert blocks, those holding its highest affinities.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "aha/core/rng.h"
#include "aha/policy/moe.h"
#include "checkpoint_helpers.h"
#include "test_configs.h"

namespace aha::policy {
namespace {

// 16 experts on 4 devices, 4 per token, greedy softmax routing unless the test says otherwise.
Json device_json(int topk_devices) {
  Json j = testing::device_routing_json(testing::tiny_v3_json(), 16, 4, 4, topk_devices);
  j["scoring_func"] = "softmax";
  return j;
}

// Per token: the number of distinct devices its experts sit on.
std::vector<int> devices_per_token(const ModelConfig& c, int n_tokens, uint64_t seed) {
  Rng rng(seed);
  const int E = c.n_routed_experts, K = c.num_experts_per_tok, per = E / c.n_devices;
  std::vector<int> out;
  std::vector<double> s(E);
  std::vector<int32_t> tk(K);
  for (int t = 0; t < n_tokens; ++t) {
    for (double& v : s) v = rng.uniform();
    moe_select(c, s.data(), nullptr, tk.data());
    std::set<int> devs;
    for (int32_t e : tk) devs.insert(e / per);
    // The token's best expert always keeps its device.
    const int best = static_cast<int>(std::max_element(s.begin(), s.end()) - s.begin());
    EXPECT_EQ(devs.count(best / per), 1u) << "token " << t;
    out.push_back(static_cast<int>(devs.size()));
  }
  return out;
}

TEST(DeviceLimitedRouting, OneDevicePerToken) {
  const ModelConfig c = ModelConfig::from_json(device_json(1));
  for (int n : devices_per_token(c, 200, 3)) EXPECT_EQ(n, 1);
}

TEST(DeviceLimitedRouting, AtMostTwoDevicesAndSometimesTwo) {
  const ModelConfig c = ModelConfig::from_json(device_json(2));
  int two = 0;
  for (int n : devices_per_token(c, 200, 4)) {
    EXPECT_LE(n, 2);
    two += n == 2;
  }
  EXPECT_GT(two, 50);  // the limit, not the scores, is what keeps tokens on few devices
  const ModelConfig off = ModelConfig::from_json(device_json(4));
  int more = 0;
  for (int n : devices_per_token(off, 200, 4)) more += n > 2;
  EXPECT_GT(more, 50);  // without the limit, 4 experts of 16 spread over 3-4 devices
}

// Within the kept devices the top-k is the plain one: the same as greedy routing over the
// scores with every other device's experts removed.
TEST(DeviceLimitedRouting, TopKInsideTheKeptDevices) {
  const ModelConfig c = ModelConfig::from_json(device_json(2));
  Rng rng(9);
  std::vector<double> s(16);
  for (int t = 0; t < 50; ++t) {
    for (double& v : s) v = rng.uniform();
    std::vector<int32_t> tk(4);
    moe_select(c, s.data(), nullptr, tk.data());
    std::vector<double> dev(4, -1);
    for (int e = 0; e < 16; ++e) dev[e / 4] = std::max(dev[e / 4], s[e]);
    std::vector<int> order = {0, 1, 2, 3};
    std::sort(order.begin(), order.end(), [&](int a, int b) { return dev[a] > dev[b]; });
    std::vector<double> masked(16, -1);
    for (int e = 0; e < 16; ++e) {
      if (e / 4 == order[0] || e / 4 == order[1]) masked[e] = s[e];
    }
    std::vector<int32_t> want(16);
    for (int e = 0; e < 16; ++e) want[e] = e;
    std::sort(want.begin(), want.end(), [&](int a, int b) { return masked[a] > masked[b]; });
    want.resize(4);
    std::vector<int32_t> got = tk;
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
}

// With groups (V3's node limit), the devices are chosen first and the groups inside them.
TEST(DeviceLimitedRouting, WithGroupLimitedRouting) {
  Json j = device_json(1);
  j["n_group"] = 8;
  j["topk_group"] = 2;
  j["topk_method"] = "noaux_tc";
  j["scoring_func"] = "sigmoid";
  const ModelConfig c = ModelConfig::from_json(j);
  for (int n : devices_per_token(c, 100, 5)) EXPECT_EQ(n, 1);
}

TEST(DeviceLimitedRouting, BadKeysAreNamed) {
  auto rejects = [](const Json& j, const std::string& needle) {
    testing::expect_error([&] { ModelConfig::from_json(j); }, needle);
  };
  Json j = device_json(1);
  j["n_devices"] = 3;
  rejects(j, "n_devices");
  j = device_json(5);
  rejects(j, "topk_devices");
  j = device_json(1);
  j["num_experts_per_tok"] = 5;  // one device holds 4
  rejects(j, "topk_devices");
  j = device_json(1);
  j["n_group"] = 2;  // groups of 8 do not nest in devices of 4
  j["topk_method"] = "group_limited_greedy";
  rejects(j, "n_group % n_devices");
}

// Greedy routing keeps the K largest scores, largest first, and a tie goes to the lower index:
// scores from five values, so most tokens have ties, against a stable sort.
TEST(DeviceLimitedRouting, GreedyTopKLargestFirstTiesToLowerIndex) {
  const ModelConfig c = ModelConfig::from_json(device_json(4));
  const int E = c.n_routed_experts, K = c.num_experts_per_tok;
  Rng rng(11);
  std::vector<double> s(E);
  std::vector<int32_t> tk(K), want(E);
  for (int t = 0; t < 300; ++t) {
    for (double& v : s) v = std::floor(rng.uniform() * 5) / 4;
    moe_select(c, s.data(), nullptr, tk.data());
    for (int e = 0; e < E; ++e) want[e] = e;
    std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return s[a] > s[b]; });
    EXPECT_EQ(tk, std::vector<int32_t>(want.begin(), want.begin() + K)) << "token " << t;
  }
}

}  // namespace
}  // namespace aha::policy
