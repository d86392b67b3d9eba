#include "aggregator/resume.h"

#include <cstdint>
#include <filesystem>
#include <sstream>

#include "core/file_io.h"

namespace fedvar::aggregator {
namespace {

namespace fs = std::filesystem;

// A metrics file is one short line per round; this is far beyond any run.
constexpr uint64_t kMaxMetricsBytes = uint64_t{1} << 30;

Result<int> parse_round(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    const long value = std::stol(text, &used);
    if (used == text.size() && value >= 1 && value <= 100000000) {
      return static_cast<int>(value);
    }
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument(what + ": round '" + text + "' is not a round number");
}

Result<std::optional<LoadedModel>> read_checkpoint(const std::string& path,
                                                   uint64_t seed) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) return std::optional<LoadedModel>();
  auto loaded = load_resnet(path);
  if (!loaded.ok()) return loaded.status();
  const auto& metadata = loaded->metadata;
  const auto round = metadata.find(kCheckpointRound);
  const auto written_seed = metadata.find(kCheckpointSeed);
  if (round == metadata.end() || written_seed == metadata.end()) {
    return Status::InvalidArgument("checkpoint " + path +
                                   " does not say its round and seed: not a checkpoint "
                                   "of fedvar serve");
  }
  FEDVAR_RETURN_IF_ERROR(parse_round(round->second, "checkpoint " + path).status());
  if (written_seed->second != std::to_string(seed)) {
    return Status::InvalidArgument("checkpoint " + path +
                                   " was written by a run with --seed " +
                                   written_seed->second + ", not " +
                                   std::to_string(seed) + ": resume it with that seed");
  }
  return std::optional<LoadedModel>(std::move(loaded).value());
}

// The metrics lines of rounds 1..`last_round`, in order, each once; lines of
// later rounds (recorded, not committed) are left out.
Result<std::vector<nlohmann::json>> read_history(const std::string& path,
                                                 int last_round) {
  std::vector<nlohmann::json> history;
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) {
    if (last_round == 0) return history;
    return Status::NotFound("metrics file " + path +
                            " is missing, but the checkpoint is of round " +
                            std::to_string(last_round));
  }
  FEDVAR_ASSIGN_OR_RETURN(const std::string text,
                          read_regular_file(path, kMaxMetricsBytes));
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const std::string where = path + " line " + std::to_string(number);
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded() || !json.is_object() || !json.contains("round") ||
        !json["round"].is_number_integer()) {
      return Status::InvalidArgument(where + " is not a metrics line with a round");
    }
    const int round = json["round"].get<int>();
    if (round > last_round) {
      if (round == last_round + 1) continue;  // recorded, killed before its checkpoint
      return Status::InvalidArgument(where + " records round " + std::to_string(round) +
                                     ", past the checkpoint's round " +
                                     std::to_string(last_round) + " + 1");
    }
    if (round != static_cast<int>(history.size()) + 1) {
      return Status::InvalidArgument(
          where + " records round " + std::to_string(round) + " where round " +
          std::to_string(history.size() + 1) + " was expected");
    }
    history.push_back(std::move(json));
  }
  if (static_cast<int>(history.size()) != last_round) {
    return Status::InvalidArgument(
        "metrics file " + path + " records " + std::to_string(history.size()) +
        " rounds, but the checkpoint is of round " + std::to_string(last_round));
  }
  return history;
}

}  // namespace

Result<ResumePoint> read_resume_point(const std::string& checkpoint_path,
                                      const std::string& metrics_path, uint64_t seed) {
  ResumePoint point;
  FEDVAR_ASSIGN_OR_RETURN(point.checkpoint, read_checkpoint(checkpoint_path, seed));
  if (point.checkpoint) {
    FEDVAR_ASSIGN_OR_RETURN(point.last_round,
                            parse_round(point.checkpoint->metadata.at(kCheckpointRound),
                                        "checkpoint " + checkpoint_path));
  }
  FEDVAR_ASSIGN_OR_RETURN(point.history, read_history(metrics_path, point.last_round));
  return point;
}

int remove_stale_temp_files(const std::string& path) {
  if (path.empty()) return 0;
  const fs::path target(path);
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && entry.is_regular_file(ec)) {
      removed += fs::remove(entry.path(), ec) ? 1 : 0;
    }
  }
  return removed;
}

}  // namespace fedvar::aggregator
