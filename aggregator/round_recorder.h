// What the server records of each round: ACC / ASR / per-piece ASR of the
// global model on the test set, one JSON line in the metrics file (with what
// the before-rules did and how well they detected the attackers) and the
// checkpoint.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "aggregator/server.h"
#include "core/dataset.h"
#include "core/metrics.h"
#include "core/trigger.h"

namespace fedvar::aggregator {

// The test set and what to measure on it. The trigger is only used to
// measure; no rule ever sees it.
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

struct RecorderOptions {
  std::string run;              // label of the run in every metrics line
  std::string metrics_path;     // JSON Lines, rewritten atomically each round
  std::string checkpoint_path;  // safetensors, rewritten atomically; "" = none
  uint64_t seed = 0;            // the run's seed, in the checkpoint (resume.h)
  // Ground truth for the metrics only ("malicious among the selected", the
  // before-rules' detection counts); never used by any rule.
  std::set<std::string> malicious;
};

// The server's record step (Server::run's RecordFn): evaluates the global
// model, appends the round's metrics line and then writes the checkpoint,
// which commits the round (resume.h). It builds the network from the state
// dict's shapes (once) to evaluate it.
class RoundRecorder {
 public:
  RoundRecorder(RecorderOptions options, EvalSpec eval);

  Status record(const RoundOutcome& outcome, const StateDict& global);
  RecordFn callback() {
    return [this](const RoundOutcome& o, const StateDict& g) { return record(o, g); };
  }

  // Continues a resumed run after the rounds of `history` (resume.h): they
  // stay the metrics file's first lines, rewritten now without any line of
  // a round that was not committed.
  Status resume(std::vector<nlohmann::json> history);

  // The metrics lines written so far.
  const std::vector<nlohmann::json>& history() const { return history_; }

 private:
  RecorderOptions options_;
  EvalSpec eval_;
  ResNet18 model_{nullptr};
  std::vector<nlohmann::json> history_;
  std::string metrics_text_;
};

}  // namespace fedvar::aggregator
