// What the server does with each new global model after aggregation: runs the
// post-aggregation hooks (defense plugins) in order on the server's clean
// validation set, evaluates ACC / ASR / per-piece ASR on the test set,
// appends one JSON line to the metrics file and checkpoints the model.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "aggregator/server.h"
#include "core/dataset.h"
#include "core/metrics.h"
#include "core/round_schedule.h"
#include "core/trigger.h"
#include "plugins/defense.h"

namespace fedvar::aggregator {

// The test set and what to measure on it. The trigger is only used to
// measure; the hooks never see it.
struct EvalSpec {
  Dataset test;
  std::optional<TriggerSpec> trigger;  // none: ASR is null
  int64_t target = 0;
  EvalOptions options;
};

// {"acc", "asr" (null without a trigger), "asr_pieces" (one per DBA piece,
// empty otherwise), "clean_to_target" (with a trigger: the share of clean
// non-target images sent to the target, ASR's floor)}, in percent. A libtorch
// error is kInternal.
Result<nlohmann::json> evaluate_global(ResNet18& model, const EvalSpec& spec);

struct PipelineOptions {
  std::string run;              // label of the run in every metrics line
  std::string metrics_path;     // JSON Lines, rewritten atomically each round
  std::string checkpoint_path;  // safetensors, rewritten atomically; "" = none
  // Ground truth for the metrics only ("malicious among the selected"); never
  // used by aggregation or hooks.
  std::set<std::string> malicious;
  // Rounds whose aggregated model the hooks purify (default all).
  RoundSchedule hook_rounds;
};

class RoundPipeline {
 public:
  // `hooks` run in order on `context` (clean set, normalization, device).
  RoundPipeline(PipelineOptions options,
                std::vector<std::unique_ptr<plugins::Defense>> hooks,
                plugins::DefenseContext context, EvalSpec eval);

  // The server's after_aggregation: the hooks in order (only when the round
  // aggregated); their reports go into the round's metrics line.
  Status run_hooks(const RoundOutcome& outcome, ResNet18& model);
  // The server's record: eval, metrics line, checkpoint.
  Status record(const RoundOutcome& outcome, ResNet18& model);
  // Both, bound to this pipeline, for Server::run.
  RoundCallbacks callbacks();

  // The metrics lines written so far.
  const std::vector<nlohmann::json>& history() const { return history_; }

 private:
  PipelineOptions options_;
  std::vector<std::unique_ptr<plugins::Defense>> hooks_;
  plugins::DefenseContext context_;
  EvalSpec eval_;
  std::vector<nlohmann::json> history_;
  std::string metrics_text_;
  std::map<int, nlohmann::json> hook_reports_;  // by round, until recorded
};

}  // namespace fedvar::aggregator
