// The server's Strategy: what happens to a round's updates between their
// arrival and the next broadcast, in three phases (Flower's Strategy and
// FedML's defend_before / on / after_aggregation are the models):
//
//   updates -> before (filters, in order) -> on (one aggregation rule)
//           -> after (hooks, in order: purify the new global model) -> record
//
// Everything here works on state dicts (names -> tensors), not on a network
// class; a hook that needs the network builds it from the state dict. The
// math of each rule is a pure function (robust_rules.h, fedavg.h, hdbscan.h);
// the classes below only route data to it. None reads the ground truth of
// who is malicious, the trigger or the target.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/round_schedule.h"
#include "core/state_dict.h"
#include "core/status.h"
#include "protocol/messages.h"

namespace fedvar::aggregator {

// One client's update of a round, as the server accepted it (signed, the
// global model's layout, finite).
struct ClientUpdate {
  std::string client_id;
  StateDict state;          // the client's model after local training
  int64_t num_samples = 0;  // its weight in a weighted mean
  double weight = 1.0;      // a factor a before-rule may lower (0: excluded)
  // When defined, the update's floating tensors as one [d] float32 delta from
  // the global model (flat_state.h's order), and `state` holds only the rest:
  // a collecting round flattens each update on arrival into a row of one
  // matrix, so the rules read the rows in place.
  torch::Tensor delta = {};
};

// What a before-rule did to one client's update, and why.
struct Verdict {
  std::string rule;  // the rule's name, e.g. "flame"
  std::string client_id;
  std::string action;  // "excluded", "reweighted" or "clipped"
  std::string reason;  // e.g. "outside the majority cluster"
  double weight = 0;   // the update's weight factor after the rule
};
nlohmann::json to_json(const Verdict& v);

// What every rule of a round may read.
struct RoundContext {
  int round = 0;
  const StateDict* global = nullptr;  // the model the clients started from
  const protocol::TrainingConfig* training = nullptr;  // the round's task settings
  uint64_t seed = 0;             // the round's seed (noise, shuffles)
  int64_t expected_updates = 0;  // clients asked for an update (0: unknown)
};

// Before aggregation: looks at all of a round's updates at once and may drop
// (weight 0), reweigh or change (clip) some. Returns one verdict per update
// it touched. Rules run in order; each sees only the updates the earlier ones
// kept.
class UpdateFilter {
 public:
  virtual ~UpdateFilter() = default;
  virtual std::string name() const = 0;
  virtual Result<std::vector<Verdict>> filter(std::vector<ClientUpdate>& updates,
                                              const RoundContext& ctx) = 0;
  // The rule's part after aggregation, if any (FLAME's noise on the new
  // global model); runs only when the round aggregated.
  virtual Status after_aggregation(StateDict& /*global*/, const RoundContext& /*ctx*/) {
    return Status::Ok();
  }
};

// On aggregation: the new global state from the updates whose weight is > 0.
// kInvalidArgument when the rule cannot run on this many updates (Krum with
// n <= 2f + 2, ...), naming the condition.
class AggregationRule {
 public:
  virtual ~AggregationRule() = default;
  virtual std::string name() const = 0;
  virtual Result<StateDict> aggregate(const std::vector<ClientUpdate>& updates,
                                      const RoundContext& ctx) = 0;
  // Whether a plain weighted mean: the server may then fold each update into
  // a running sum as it arrives instead of holding all of them.
  virtual bool is_weighted_mean() const { return false; }
};

// After aggregation: changes the new global state in place (a purifying
// defense, CRFL's clipping and noise) and reports what it did.
class AfterHook {
 public:
  virtual ~AfterHook() = default;
  virtual std::string name() const = 0;
  virtual Result<nlohmann::json> apply(StateDict& global, const RoundContext& ctx) = 0;
};

// One round's aggregation, fed as updates arrive.
class RoundAggregation {
 public:
  virtual ~RoundAggregation() = default;
  // kInvalidArgument (nothing kept) when the update does not fit the round.
  virtual Status add(ClientUpdate update) = 0;
  virtual int64_t updates() const = 0;
  // Runs the before-rules and the aggregation rule: the new global state, or
  // none when every update was excluded; `verdicts` gets the before-rules'.
  virtual Result<std::optional<StateDict>> finish(std::vector<Verdict>& verdicts) = 0;
};

// The three phases composed. Owns its rules.
class Strategy {
 public:
  // The after-hooks run in the rounds `after_rounds` names (default: all).
  Strategy(std::vector<std::unique_ptr<UpdateFilter>> before,
           std::unique_ptr<AggregationRule> on,
           std::vector<std::unique_ptr<AfterHook>> after,
           RoundSchedule after_rounds = {});

  // A round that starts from ctx.global: a running weighted sum when the rule
  // is a weighted mean and no before-rule needs every update, else a
  // collection of the updates. The context must outlive the round.
  std::unique_ptr<RoundAggregation> start_round(const RoundContext& ctx);
  // The after-hooks in order on `global` (none outside after_rounds); their
  // reports, one per hook that ran.
  Result<nlohmann::json> after(StateDict& global, const RoundContext& ctx);

  // "before: flame; on: median; after: vardefense" for logs.
  std::string describe() const;
  bool has_after_hooks() const { return !after_.empty(); }

 private:
  std::vector<std::unique_ptr<UpdateFilter>> before_;
  std::unique_ptr<AggregationRule> on_;
  std::vector<std::unique_ptr<AfterHook>> after_;
  RoundSchedule after_rounds_;
};

}  // namespace fedvar::aggregator
