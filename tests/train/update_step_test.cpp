// The shared update step: a finite update steps, a non-finite loss or gradient skips (logged),
// more than max_nan_skips skips in a row end the run, a good update resets the count, and the
// ESFT mask keeps frozen tensors where they are.
#include "aha/train/update_step.h"

#include <gtest/gtest.h>

#include <cmath>

#include "aha/core/error.h"
#include "train_fixture.h"

namespace aha::train {
namespace {

using testing::TinyRun;

// Elements of the tensors that count in the gradient norm (the routing bias does not).
double trainable_elements(const policy::Model<float>& m) {
  double n = 0;
  for (const auto& e : m.table().entries()) n += e.trainable ? double(e.numel) : 0.0;
  return n;
}

TEST(UpdateStep, FiniteUpdateStepsAndReportsTheNorm) {
  TinyRun run("finite");
  UpdateStep u(*run.model, *run.opt, 1.0, 3, run.db.get());
  const std::vector<float> before = run.model->params();
  u.begin();
  run.fill_grads(0.5f);
  u.no_backward();  // a single rank: nothing to join
  const UpdateResult r = u.apply(1.25, 1e-2, 1);
  EXPECT_FALSE(r.skipped);
  EXPECT_NEAR(r.grad_norm, 0.5 * std::sqrt(trainable_elements(*run.model)), 1e-3 * r.grad_norm);
  EXPECT_NE(run.model->params(), before);
  EXPECT_EQ(run.opt->steps(), 1);
  EXPECT_EQ(u.nan_streak(), 0);
  u.begin();
  for (float g : run.model->grads()) ASSERT_EQ(g, 0.0f) << "begin() zeroes the gradients";
}

TEST(UpdateStep, NonFiniteSkipsThenStopsAfterTheLimit) {
  TinyRun run("nan");
  const int kMaxSkips = 2;
  UpdateStep u(*run.model, *run.opt, 1.0, kMaxSkips, run.db.get());
  const std::vector<float> before = run.model->params();
  // A NaN loss with a finite gradient, then a finite loss with an Inf gradient: both skip.
  u.begin();
  run.fill_grads(0.5f);
  EXPECT_TRUE(u.apply(std::nan(""), 1e-2, 1).skipped);
  u.begin();
  run.fill_grads(0.5f);
  run.model->grads()[3] = INFINITY;
  const UpdateResult r = u.apply(1.0, 1e-2, 2);
  EXPECT_TRUE(r.skipped);
  EXPECT_FALSE(std::isfinite(r.grad_norm));
  EXPECT_EQ(run.model->params(), before);
  EXPECT_EQ(run.opt->steps(), 0);
  EXPECT_EQ(u.nan_streak(), 2);
  EXPECT_EQ(run.events("nan_skip"), 2);
  // One more in a row is more than max_nan_skips: the run ends.
  u.begin();
  run.fill_grads(0.5f);
  try {
    u.apply(INFINITY, 1e-2, 3);
    FAIL() << "a third skip in a row must stop";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 non-finite updates in a row at step 3"),
              std::string::npos)
        << e.what();
  }
}

TEST(UpdateStep, AGoodUpdateResetsTheStreakAndResumeRestoresIt) {
  TinyRun run("reset");
  UpdateStep u(*run.model, *run.opt, 1.0, 1, run.db.get());
  u.begin();
  run.fill_grads(NAN);
  EXPECT_TRUE(u.apply(1.0, 1e-2, 1).skipped);
  u.begin();
  run.fill_grads(0.1f);
  EXPECT_FALSE(u.apply(1.0, 1e-2, 2).skipped);
  EXPECT_EQ(u.nan_streak(), 0);
  // Alternating never stops; a restored streak counts on.
  u.set_nan_streak(1);
  u.begin();
  run.fill_grads(NAN);
  EXPECT_THROW(u.apply(1.0, 1e-2, 3), Error);
}

TEST(UpdateStep, FrozenTensorsNeitherMoveNorCountInTheNorm) {
  TinyRun run("mask");
  UpdateStep u(*run.model, *run.opt, 0.0, 3, run.db.get());
  const auto& entries = run.model->table().entries();
  std::vector<uint8_t> mask(entries.size(), 0);
  mask[0] = 1;  // only the first tensor learns
  u.set_trainable(mask);
  const std::vector<float> before = run.model->params();
  u.begin();
  run.fill_grads(1.0f);
  const UpdateResult r = u.apply(1.0, 1e-2, 1);
  EXPECT_NEAR(r.grad_norm, std::sqrt(double(entries[0].numel)), 1e-3 * r.grad_norm);
  for (size_t i = 0; i < entries.size(); ++i) {
    bool moved = false;
    for (size_t j = 0; j < entries[i].numel; ++j) {
      moved |= run.model->params()[entries[i].offset + j] != before[entries[i].offset + j];
    }
    EXPECT_EQ(moved, i == 0) << entries[i].name;
  }
}

}  // namespace
}  // namespace aha::train
