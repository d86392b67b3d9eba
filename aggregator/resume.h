// Where a killed run of the server continues (`fedvar serve --resume`).
// The record of round r is its metrics line and its checkpoint, written in
// that order, each atomically: the checkpoint commits the round. So the last
// complete round is the checkpoint's; a metrics line past it belongs to a
// round whose checkpoint was never written, and is dropped. Resuming from
// round r + 1 with the same seed repeats what the run would have done: the
// round seeds, the client sampling and the after-rules' schedule are functions
// of the run seed and the round number only.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model_io.h"
#include "core/status.h"

namespace fedvar::aggregator {

// Metadata keys of a checkpoint that make it resumable.
inline constexpr const char* kCheckpointRound = "round";
inline constexpr const char* kCheckpointSeed = "seed";

struct ResumePoint {
  int last_round = 0;                     // 0: nothing committed, start at round 1
  std::optional<LoadedModel> checkpoint;  // the global model after last_round
  std::vector<nlohmann::json> history;    // metrics lines of rounds 1..last_round
};

// Reads the run recorded in `checkpoint_path` and `metrics_path` (either may
// be missing: then the run starts at round 1, provided the metrics hold no
// more than the one round a kill can leave uncommitted). Errors, with the
// path: a checkpoint without a round or written with another seed, a metrics
// line that is not JSON, rounds 1..last_round not each recorded exactly once
// in order.
Result<ResumePoint> read_resume_point(const std::string& checkpoint_path,
                                      const std::string& metrics_path, uint64_t seed);

// Removes what a killed writer left of `path`'s atomic writes
// ("<path>.tmp.<pid>"); returns how many files it removed.
int remove_stale_temp_files(const std::string& path);

}  // namespace fedvar::aggregator
