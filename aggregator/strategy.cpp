#include "aggregator/strategy.h"

#include <algorithm>

#include <torch/torch.h>

#include "aggregator/fedavg.h"

namespace fedvar::aggregator {

nlohmann::json to_json(const Verdict& v) {
  return {{"rule", v.rule},
          {"client_id", v.client_id},
          {"action", v.action},
          {"reason", v.reason},
          {"weight", v.weight}};
}

namespace {

// f() with an exception from libtorch turned into a Status naming `where`.
template <typename F>
auto guarded(const std::string& where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return status_from_exception(where, e);
  }
}

// FedAvg folded as updates arrive: one model-sized running sum, whatever the
// number of clients.
class StreamingRound : public RoundAggregation {
 public:
  explicit StreamingRound(const RoundContext& ctx) : fedavg_(*ctx.global) {}
  Status add(ClientUpdate update) override {
    return fedavg_.add(update.state, update.num_samples);
  }
  int64_t updates() const override { return fedavg_.updates(); }
  Result<std::optional<StateDict>> finish(std::vector<Verdict>&) override {
    FEDVAR_ASSIGN_OR_RETURN(auto mean, fedavg_.result());
    return std::optional<StateDict>(std::move(mean));
  }

 private:
  FedAvg fedavg_;
};

// Every update held until the round closes, for rules that look at all.
class CollectingRound : public RoundAggregation {
 public:
  CollectingRound(const RoundContext& ctx,
                  const std::vector<std::unique_ptr<UpdateFilter>>& before,
                  AggregationRule& on)
      : ctx_(ctx), before_(before), on_(on) {}

  Status add(ClientUpdate update) override {
    if (update.num_samples <= 0) {
      return Status::InvalidArgument("an update's sample count must be positive, got " +
                                     std::to_string(update.num_samples));
    }
    FEDVAR_RETURN_IF_ERROR(check_same_layout(update.state, *ctx_.global));
    updates_.push_back(std::move(update));
    return Status::Ok();
  }
  int64_t updates() const override { return static_cast<int64_t>(updates_.size()); }

  Result<std::optional<StateDict>> finish(std::vector<Verdict>& verdicts) override {
    for (const auto& rule : before_) {
      FEDVAR_ASSIGN_OR_RETURN(
          auto said, guarded(rule->name(), [&] { return rule->filter(updates_, ctx_); }));
      verdicts.insert(verdicts.end(), said.begin(), said.end());
      drop_excluded();  // a later rule sees only what this one kept
    }
    drop_excluded();
    if (updates_.empty()) return std::optional<StateDict>();
    FEDVAR_ASSIGN_OR_RETURN(
        auto global, guarded(on_.name(), [&] { return on_.aggregate(updates_, ctx_); }));
    updates_.clear();
    for (const auto& rule : before_) {
      FEDVAR_RETURN_IF_ERROR(
          guarded(rule->name(), [&] { return rule->after_aggregation(global, ctx_); }));
    }
    return std::optional<StateDict>(std::move(global));
  }

 private:
  void drop_excluded() {
    updates_.erase(std::remove_if(updates_.begin(), updates_.end(),
                                  [](const ClientUpdate& u) { return !(u.weight > 0); }),
                   updates_.end());
  }

  const RoundContext& ctx_;
  const std::vector<std::unique_ptr<UpdateFilter>>& before_;
  AggregationRule& on_;
  std::vector<ClientUpdate> updates_;
};

}  // namespace

Strategy::Strategy(std::vector<std::unique_ptr<UpdateFilter>> before,
                   std::unique_ptr<AggregationRule> on,
                   std::vector<std::unique_ptr<AfterHook>> after,
                   RoundSchedule after_rounds)
    : before_(std::move(before)),
      on_(std::move(on)),
      after_(std::move(after)),
      after_rounds_(std::move(after_rounds)) {}

std::unique_ptr<RoundAggregation> Strategy::start_round(const RoundContext& ctx) {
  if (before_.empty() && on_->is_weighted_mean()) {
    return std::make_unique<StreamingRound>(ctx);
  }
  return std::make_unique<CollectingRound>(ctx, before_, *on_);
}

Result<nlohmann::json> Strategy::after(StateDict& global, const RoundContext& ctx) {
  nlohmann::json reports = nlohmann::json::array();
  if (!after_rounds_.contains(ctx.round)) return reports;
  for (const auto& hook : after_) {
    auto report = guarded(hook->name(), [&] { return hook->apply(global, ctx); });
    if (!report.ok()) return report.status().with_context("hook " + hook->name());
    reports.push_back(std::move(report).value());
  }
  return reports;
}

std::string Strategy::describe() const {
  std::string text = "before:";
  for (const auto& r : before_) text += " " + r->name();
  if (before_.empty()) text += " -";
  text += "; on: " + on_->name() + "; after:";
  for (const auto& h : after_) text += " " + h->name();
  if (after_.empty()) text += " -";
  return text;
}

}  // namespace fedvar::aggregator
