#include "aggregator/after_hooks.h"

#include <torch/torch.h>

#include <cmath>

#include "aggregator/robust_rules.h"
#include "plugins/option_table.h"
#include "plugins/purify_state.h"
#include "plugins/registry.h"

namespace fedvar::aggregator {
namespace {

// A purifying defense over the state dict (plugins/purify_state.h).
class DefenseHook : public AfterHook {
 public:
  DefenseHook(std::unique_ptr<plugins::Defense> defense, plugins::DefenseContext server)
      : defense_(std::move(defense)), server_(std::move(server)) {}
  std::string name() const override { return defense_->name(); }

  Result<nlohmann::json> apply(StateDict& global, const RoundContext& ctx) override {
    plugins::DefenseContext round = server_;
    round.seed = server_.seed + static_cast<uint64_t>(ctx.round);  // fresh shuffles
    round.holdout_seed = server_.split_seed();                     // one holdout
    FEDVAR_ASSIGN_OR_RETURN(auto purified, plugins::purify_state(*defense_, global, round));
    global = std::move(purified.state);
    return std::move(purified.report);
  }

 private:
  std::unique_ptr<plugins::Defense> defense_;
  plugins::DefenseContext server_;
};

struct CrflOptions {
  double clip = 15;     // L2 norm bound of the parameters
  double sigma = 0.01;  // noise std
};

class CrflHook : public AfterHook {
 public:
  explicit CrflHook(CrflOptions o) : o_(o) {}
  std::string name() const override { return "crfl"; }

  Result<nlohmann::json> apply(StateDict& global, const RoundContext& ctx) override {
    torch::NoGradGuard no_grad;
    double squares = 0;
    for (const auto& [name, t] : global) {
      if (at::isFloatingType(t.scalar_type()) && !is_buffer_name(name)) {
        squares += t.to(torch::kFloat64).square().sum().item<double>();
      }
    }
    const double norm = std::sqrt(squares);
    const double scale = norm > o_.clip ? o_.clip / norm : 1.0;
    uint64_t seed = ctx.seed;
    for (auto& [name, t] : global) {
      if (!at::isFloatingType(t.scalar_type()) || is_buffer_name(name)) continue;
      FEDVAR_ASSIGN_OR_RETURN(t, gaussian_noise_like(t * scale, o_.sigma, seed++));
    }
    return nlohmann::json{
        {"defense", name()}, {"norm", norm}, {"scale", scale}, {"sigma", o_.sigma}};
  }

 private:
  CrflOptions o_;
};

}  // namespace

Result<std::unique_ptr<AfterHook>> make_after_hook(
    const std::string& spec, const plugins::DefenseContext& server) {
  if (plugins::split_spec(spec).name == "crfl") {
    using O = CrflOptions;
    static const auto table =
        plugins::OptionTable<O>("crfl")
            .real("clip", &O::clip, 1e-9, 1e12, "L2 norm bound of the parameters")
            .real("sigma", &O::sigma, 0.0, 1e3, "std of the Gaussian noise");
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(plugins::split_spec(spec).options));
    return std::unique_ptr<AfterHook>(new CrflHook(o));
  }
  FEDVAR_ASSIGN_OR_RETURN(auto defense, plugins::make_defense(spec));
  return defense_hook(std::move(defense), server);
}

std::unique_ptr<AfterHook> defense_hook(std::unique_ptr<plugins::Defense> defense,
                                        plugins::DefenseContext server) {
  return std::make_unique<DefenseHook>(std::move(defense), std::move(server));
}

}  // namespace fedvar::aggregator
