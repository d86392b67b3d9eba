// Implicit Backdoor Adversarial Unlearning: the fixed-point hypergradient
// against the exact one of a quadratic bilevel problem, the L2 projection, the
// universal perturbation, the options, and a short run on the backdoored
// fixture (~15-40 s to train it; the whole test took 30 s for one round on one
// core, 224 s for two at load 9).
#include "plugins/ibau.h"

#include <cstdint>

#include <gtest/gtest.h>

#include "core/metrics.h"
#include "core/model_io.h"
#include "plugins/registry.h"
#include "tests/support/defense_options.h"
#include "tests/support/poisoned_fixture.h"

namespace fedvar::plugins {
namespace {

// Two rounds with K = 2 on 450 tuning images (10 steps), to keep the test
// short; the defaults run 5 rounds with K = 5.
constexpr char kFixtureSpec[] = "i-bau:rounds=2,k=2";

// Inner: w*(h) = argmin_w 0.5 w'Aw - w'Bh = A^-1 B h. Outer: 0.5 |w - c|^2 +
// 0.5 lambda |h|^2, whose hypergradient is B'A^-1 (w* - c) + lambda h.
struct Quadratic {
  torch::Tensor a =
      torch::tensor({{2.0, 0.5, 0.0}, {0.5, 1.5, 0.2}, {0.0, 0.2, 1.0}}, torch::kDouble);
  torch::Tensor b = torch::tensor({{1.0, 0.0}, {0.0, 2.0}, {1.0, 1.0}}, torch::kDouble);
  torch::Tensor c = torch::tensor({1.0, -1.0, 0.5}, torch::kDouble);
  torch::Tensor h = torch::tensor({0.3, -0.7}, torch::kDouble).requires_grad_(true);
  double lambda = 0.4;
  double step = 0.3;  // spectral radius of I - step * A is below 1

  torch::Tensor solution() const {
    return torch::linalg_solve(a, torch::mv(b, h.detach()), /*left=*/true);
  }
  torch::Tensor exact() const {
    return torch::mv(b.t(), torch::linalg_solve(a, solution() - c, /*left=*/true)) +
           lambda * h.detach();
  }
  PairLoss inner() const {
    return [this](const TensorList& w, const TensorList& hp) {
      return 0.5 * torch::dot(w[0], torch::mv(a, w[0])) -
             torch::dot(w[0], torch::mv(b, hp[0]));
    };
  }
  PairLoss outer() const {
    return [this](const TensorList& w, const TensorList& hp) {
      return 0.5 * (w[0] - c).pow(2).sum() + 0.5 * lambda * hp[0].pow(2).sum();
    };
  }
  Hypergradient run(int k) const {
    return fixed_point_hypergradient({solution()}, {h}, k,
                                     gradient_descent_map(inner(), step), outer());
  }
};

TEST(Ibau, GradientDescentMapTakesOneStep) {
  Quadratic q;
  const auto w = torch::tensor({0.1, 0.2, 0.3}, torch::kDouble).requires_grad_(true);
  const auto mapped = gradient_descent_map(q.inner(), q.step)({w}, {q.h});
  const auto expected =
      w.detach() - q.step * (torch::mv(q.a, w.detach()) - torch::mv(q.b, q.h.detach()));
  EXPECT_TRUE(torch::allclose(mapped[0].detach(), expected, 1e-12, 1e-12));
  EXPECT_TRUE(mapped[0].requires_grad());
}

TEST(Ibau, FixedPointHypergradientConvergesToTheExactOne) {
  Quadratic q;
  const auto hyper = q.run(500);
  ASSERT_EQ(hyper.grads.size(), 1u);
  EXPECT_TRUE(torch::allclose(hyper.grads[0], q.exact(), 1e-8, 1e-8))
      << hyper.grads[0] << " vs " << q.exact();
  EXPECT_LT(hyper.iterations, 500);  // stopped at the tolerance
}

TEST(Ibau, FewIterationsGiveTheTruncatedNeumannSeries) {
  Quadratic q;
  const auto g = q.solution() - q.c;  // d outer / dw
  const auto m = torch::eye(3, torch::kDouble) - q.step * q.a;
  auto v = torch::zeros(3, torch::kDouble);
  for (int k = 1; k <= 5; ++k) {
    v = torch::mv(m, v) + g;  // v_k = sum_{j<k} (I - step A)^j g
    const auto expected = q.step * torch::mv(q.b.t(), v) + q.lambda * q.h.detach();
    const auto hyper = q.run(k);
    EXPECT_EQ(hyper.iterations, k);
    EXPECT_TRUE(torch::allclose(hyper.grads[0], expected, 1e-10, 1e-12)) << "k " << k;
  }
  // K = 0: only the outer loss's direct gradient.
  EXPECT_TRUE(torch::allclose(q.run(0).grads[0], q.lambda * q.h.detach()));
}

TEST(Ibau, ProjectL2ShrinksOnlyWhatIsOutside) {
  auto d = torch::tensor({3.0f, 4.0f});
  project_l2(d, 10.0);
  EXPECT_TRUE(torch::allclose(d, torch::tensor({3.0f, 4.0f})));
  project_l2(d, 1.0);
  EXPECT_NEAR(d.norm().item<double>(), 1.0, 1e-6);
  EXPECT_TRUE(torch::allclose(d, torch::tensor({0.6f, 0.8f})));
  auto zero = torch::zeros({2, 2});
  project_l2(zero, 1.0);
  EXPECT_EQ(zero.abs().sum().item<double>(), 0.0);
}

TEST(Ibau, UniversalPerturbationIsOneImageWithinTheRadius) {
  torch::manual_seed(6);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  model->eval();
  std::vector<UnitBatch> batches;
  for (int i = 0; i < 3; ++i) {
    batches.push_back(
        {torch::rand({5, 1, 28, 28}), torch::randint(10, {5}, torch::kLong)});
  }
  IbauOptions o;
  const auto free = universal_perturbation(model, batches, Normalization::none(1), o);
  EXPECT_EQ(free.sizes(), (std::vector<int64_t>{1, 1, 28, 28}));
  EXPECT_GT(free.norm().item<double>(), 0.0);
  EXPECT_FALSE(free.requires_grad());
  o.radius = 1e-3;
  const auto bounded = universal_perturbation(model, batches, Normalization::none(1), o);
  EXPECT_LE(bounded.norm().item<double>(), 1e-3 * (1 + 1e-5));
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Ibau, BadOptionsAreErrorsNamingTheOption) {
  EXPECT_TRUE(make_defense("i-bau").ok());
  EXPECT_TRUE(make_defense("i-bau:rounds=3,k=10,lr=0.0001,radius=10").ok());
  testing::expect_bad_options_named(
      "i-bau",
      {"rounds=-1", "k=-2", "lr=5", "batch_size=0", "inner_lr=-0.1", "pert_lr=abc",
       "pert_decay=-1", "portion=1.5", "radius=-1", "holdout=0.95"});
  testing::expect_unknown_option_named("i-bau:n_rounds=5", "n_rounds");
  auto defaults = IbauOptions::table().echo(IbauOptions{});
  EXPECT_EQ(defaults["rounds"], 5);
  EXPECT_EQ(defaults["k"], 5);
  EXPECT_EQ(defaults["lr"], 0.001);
  EXPECT_EQ(defaults["batch_size"], 100);
  EXPECT_EQ(defaults["inner_lr"], 0.1);
  EXPECT_EQ(defaults["radius"], 0.0);
}

TEST(Ibau, LowersTheFixturesAsrAndKeepsAcc) {
  auto f = testing::make_poisoned_fixture();
  ASSERT_TRUE(f.model) << "Fashion-MNIST missing or training failed";
  const auto before = testing::score(f.model, f);
  ASSERT_GT(before.asr, 90.0);

  auto run = testing::run_defense(f, kFixtureSpec, testing::clean_context(f, 500));
  ASSERT_TRUE(run.error.empty()) << run.error;
  EXPECT_EQ(run.report["defense"], "i-bau");
  EXPECT_FALSE(run.model->is_training());
  EXPECT_EQ(run.report["rounds"].size(), 2u);
  EXPECT_LT(run.after.asr, before.asr - 40.0);
  EXPECT_GT(run.after.acc, before.acc - 10.0);
}

}  // namespace
}  // namespace fedvar::plugins
