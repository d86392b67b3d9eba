#include "aggregator/aggregation_rules.h"

#include <torch/torch.h>

#include <functional>

#include "aggregator/flat_state.h"
#include "aggregator/robust_rules.h"
#include "plugins/option_table.h"

namespace fedvar::aggregator {
namespace {

using plugins::OptionTable;

class FedAvgRule : public AggregationRule {
 public:
  std::string name() const override { return "fedavg"; }
  bool is_weighted_mean() const override { return true; }
  Result<StateDict> aggregate(const std::vector<ClientUpdate>& updates,
                              const RoundContext& ctx) override {
    FEDVAR_ASSIGN_OR_RETURN(auto deltas, stack_deltas(updates, *ctx.global));
    FEDVAR_ASSIGN_OR_RETURN(auto mean, weighted_mean(deltas, sample_weights(updates)));
    return apply_delta(*ctx.global, mean, updates);
  }
};

// A rule that maps the stacked deltas to one delta (median, trimmed mean,
// Bulyan): the math is `rule`, a robust_rules.h function.
class DeltaRule : public AggregationRule {
 public:
  using Fn = std::function<Result<torch::Tensor>(const torch::Tensor&)>;
  DeltaRule(std::string name, Fn rule) : name_(std::move(name)), rule_(std::move(rule)) {}
  std::string name() const override { return name_; }
  Result<StateDict> aggregate(const std::vector<ClientUpdate>& updates,
                              const RoundContext& ctx) override {
    FEDVAR_ASSIGN_OR_RETURN(auto deltas, stack_deltas(updates, *ctx.global));
    FEDVAR_ASSIGN_OR_RETURN(auto delta, rule_(deltas));
    return apply_delta(*ctx.global, delta, updates);
  }

 private:
  std::string name_;
  Fn rule_;
};

struct TrimmedMeanOptions {
  double beta = 0.1;
};

struct KrumOptions {
  int f = 1;  // attackers assumed
};
struct MultiKrumOptions {
  int f = 1;  // attackers assumed
  int m = 0;  // updates averaged; 0: n - f
};

// Krum (m = 1: the chosen update itself) and Multi-Krum (the sample-weighted
// mean of the m chosen), as Flower's aggregate_krum.
class KrumRule : public AggregationRule {
 public:
  KrumRule(std::string name, MultiKrumOptions o) : name_(std::move(name)), o_(o) {}
  std::string name() const override { return name_; }
  Result<StateDict> aggregate(const std::vector<ClientUpdate>& updates,
                              const RoundContext& ctx) override {
    FEDVAR_ASSIGN_OR_RETURN(auto deltas, stack_deltas(updates, *ctx.global));
    const int64_t n = deltas.size(0);
    const int64_t m = o_.m > 0 ? o_.m : n - o_.f;
    FEDVAR_ASSIGN_OR_RETURN(auto chosen, krum_select(deltas, o_.f, m));
    std::vector<ClientUpdate> kept;
    for (int64_t i : chosen) kept.push_back(updates[static_cast<size_t>(i)]);
    auto rows = deltas.index_select(0, torch::tensor(chosen, torch::kLong));
    FEDVAR_ASSIGN_OR_RETURN(auto mean, weighted_mean(rows, sample_weights(kept)));
    return apply_delta(*ctx.global, mean, kept);
  }

 private:
  std::string name_;
  MultiKrumOptions o_;
};

struct BulyanOptions {
  int f = 1;
};

}  // namespace

std::vector<std::string> aggregation_rule_names() {
  return {"fedavg", "median", "trimmed-mean", "krum", "multi-krum", "bulyan"};
}

Result<std::unique_ptr<AggregationRule>> make_aggregation_rule(const std::string& spec) {
  const auto [name, text] = plugins::split_spec(spec);
  if (name == "fedavg" || name == "median") {
    FEDVAR_ASSIGN_OR_RETURN(auto none, plugins::parse_options(text));
    if (!none.empty()) return Status::InvalidArgument(name + " takes no options");
    if (name == "fedavg") return std::unique_ptr<AggregationRule>(new FedAvgRule);
    return std::unique_ptr<AggregationRule>(new DeltaRule(name, coordinate_median));
  }
  if (name == "trimmed-mean") {
    using O = TrimmedMeanOptions;
    static const auto table = OptionTable<O>(name).real(
        "beta", &O::beta, 0.0, 0.49, "share cut at each end per coordinate");
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(text));
    return std::unique_ptr<AggregationRule>(new DeltaRule(
        name, [o](const torch::Tensor& deltas) { return trimmed_mean(deltas, o.beta); }));
  }
  if (name == "krum") {
    static const auto table = OptionTable<KrumOptions>(name).integer(
        "f", &KrumOptions::f, 0, 100000, "attackers assumed");
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(text));
    return std::unique_ptr<AggregationRule>(new KrumRule(name, {o.f, 1}));
  }
  if (name == "multi-krum") {
    using O = MultiKrumOptions;
    static const auto table =
        OptionTable<O>(name)
            .integer("f", &O::f, 0, 100000, "attackers assumed")
            .integer("m", &O::m, 0, 100000, "updates averaged (0: n - f)");
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(text));
    return std::unique_ptr<AggregationRule>(new KrumRule(name, o));
  }
  if (name == "bulyan") {
    using O = BulyanOptions;
    static const auto table =
        OptionTable<O>(name).integer("f", &O::f, 0, 100000, "attackers assumed");
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(text));
    return std::unique_ptr<AggregationRule>(new DeltaRule(
        name, [o](const torch::Tensor& deltas) { return bulyan(deltas, o.f); }));
  }
  std::string known;
  for (const auto& n : aggregation_rule_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("unknown aggregation rule '" + name +
                                 "' (known: " + known + ")");
}

}  // namespace fedvar::aggregator
