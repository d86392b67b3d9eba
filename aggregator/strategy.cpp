#include "aggregator/strategy.h"

#include <algorithm>

#include <torch/torch.h>

#include "aggregator/fedavg.h"
#include "aggregator/flat_state.h"

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

// Every update held until the round closes, for rules that look at all. Each
// update's floating tensors become, on arrival, its delta row in one [n, d]
// float32 matrix sized for the clients asked (grown if more answer), and
// leave its state dict: the rules read the rows in place, and the round holds
// 4 bytes per parameter per update, not a state dict and a copy of it.
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
    return guarded("collecting round", [&]() -> Status {
      reserve_row();
      update.delta = rows_[static_cast<int64_t>(updates_.size())];
      FEDVAR_RETURN_IF_ERROR(write_delta(update.delta, update.state, *ctx_.global));
      for (auto it = update.state.begin(); it != update.state.end();) {
        it = at::isFloatingType(it->second.scalar_type()) ? update.state.erase(it)
                                                          : std::next(it);
      }
      updates_.push_back(std::move(update));
      return Status::Ok();
    });
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
    rows_ = torch::Tensor();
    for (const auto& rule : before_) {
      FEDVAR_RETURN_IF_ERROR(
          guarded(rule->name(), [&] { return rule->after_aggregation(global, ctx_); }));
    }
    return std::optional<StateDict>(std::move(global));
  }

 private:
  // A free row for the next update: the matrix is made at the first update
  // and doubled when full (the rows already taken move with it).
  void reserve_row() {
    const auto used = static_cast<int64_t>(updates_.size());
    if (rows_.defined() && used < rows_.size(0)) return;
    const int64_t capacity = std::max<int64_t>({ctx_.expected_updates, 2 * used, 1});
    torch::Tensor grown =
        torch::empty({capacity, flat_size(*ctx_.global)}, torch::kFloat32);
    if (used > 0) grown.narrow(0, 0, used).copy_(rows_.narrow(0, 0, used));
    rows_ = grown;
    for (int64_t i = 0; i < used; ++i) updates_[static_cast<size_t>(i)].delta = rows_[i];
  }

  // Removes the updates a rule excluded, moving the kept rows up so that they
  // stay the first rows of the matrix, in order.
  void drop_excluded() {
    size_t kept = 0;
    for (size_t i = 0; i < updates_.size(); ++i) {
      if (!(updates_[i].weight > 0)) continue;
      if (kept != i) {
        updates_[kept] = std::move(updates_[i]);
        torch::Tensor row = rows_[static_cast<int64_t>(kept)];
        row.copy_(updates_[kept].delta);
        updates_[kept].delta = row;
      }
      ++kept;
    }
    updates_.resize(kept);
  }

  const RoundContext& ctx_;
  const std::vector<std::unique_ptr<UpdateFilter>>& before_;
  AggregationRule& on_;
  std::vector<ClientUpdate> updates_;
  torch::Tensor rows_;  // [capacity, d] float32; row i is updates_[i].delta
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
