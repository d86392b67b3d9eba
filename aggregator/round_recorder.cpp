#include "aggregator/round_recorder.h"

#include "aggregator/resume.h"

#include "core/file_io.h"
#include "core/log.h"
#include "core/model_io.h"
#include "core/stopwatch.h"

namespace fedvar::aggregator {
namespace {

std::string pieces_text(const nlohmann::json& pieces) {
  std::string text;
  for (const auto& p : pieces) {
    text += (text.empty() ? "" : "/") + fmt::format("{:.1f}", p.get<double>());
  }
  return text;
}

}  // namespace

Result<nlohmann::json> evaluate_global(ResNet18& model, const EvalSpec& spec) {
  nlohmann::json out = {{"asr", nullptr}, {"asr_pieces", nlohmann::json::array()}};
  FEDVAR_ASSIGN_OR_RETURN(out["acc"], accuracy_percent(model, spec.test, spec.options));
  if (!spec.trigger) return out;
  FEDVAR_ASSIGN_OR_RETURN(
      out["asr"],
      attack_success_percent(model, spec.test, *spec.trigger, spec.target, spec.options));
  // ASR's reference: clean images the model sends to the target anyway.
  FEDVAR_ASSIGN_OR_RETURN(
      out["clean_to_target"],
      clean_to_target_percent(model, spec.test, spec.target, spec.options));
  for (const TriggerSpec& piece : dba_pieces(*spec.trigger)) {
    FEDVAR_ASSIGN_OR_RETURN(
        const double asr,
        attack_success_percent(model, spec.test, piece, spec.target, spec.options));
    out["asr_pieces"].push_back(asr);
  }
  return out;
}

RoundRecorder::RoundRecorder(RecorderOptions options, EvalSpec eval)
    : options_(std::move(options)), eval_(std::move(eval)) {}

Status RoundRecorder::resume(std::vector<nlohmann::json> history) {
  history_ = std::move(history);
  metrics_text_.clear();
  for (const auto& line : history_) metrics_text_ += line.dump() + "\n";
  if (options_.metrics_path.empty()) return Status::Ok();
  return write_file_atomic(options_.metrics_path, metrics_text_);
}

namespace {

// The before-rules' verdicts, and how well their exclusions match the ground
// truth among the clients whose update arrived: {"tp", "fp", "fn"}.
nlohmann::json detection(const RoundOutcome& outcome,
                         const std::set<std::string>& malicious) {
  std::set<std::string> excluded;
  for (const auto& v : outcome.verdicts)
    if (v.action == "excluded") excluded.insert(v.client_id);
  int tp = 0, fp = 0, fn = 0;
  for (const auto& id : outcome.received) {
    const bool bad = malicious.count(id) > 0, out = excluded.count(id) > 0;
    tp += bad && out;
    fp += !bad && out;
    fn += bad && !out;
  }
  return {{"tp", tp}, {"fp", fp}, {"fn", fn}};
}

}  // namespace

Status RoundRecorder::record(const RoundOutcome& outcome, const StateDict& global) {
  const int round = outcome.round;
  const double hook_s = outcome.hook_s;
  const auto eval_start = Clock::now();
  TensorFile file{global, {}};
  if (!model_) {
    FEDVAR_ASSIGN_OR_RETURN(auto arch, infer_resnet_options(file));
    model_ = ResNet18(arch);
  }
  FEDVAR_RETURN_IF_ERROR(load_resnet_state(model_, file));
  FEDVAR_ASSIGN_OR_RETURN(nlohmann::json line, evaluate_global(model_, eval_));
  const double eval_s = seconds_since(eval_start);

  int malicious_selected = 0;
  for (const auto& id : outcome.selected)
    malicious_selected += options_.malicious.count(id);
  // The round's wall time. The evaluation is not in it: it runs during the
  // next round's train_wait (or after the last round).
  const double total =
      outcome.broadcast_s + outcome.train_wait_s + outcome.aggregate_s + hook_s;
  line["run"] = options_.run;
  line["round"] = round;
  line["aggregated"] = outcome.aggregated;
  if (!outcome.aggregated) line["unchanged_because"] = outcome.unchanged_because;
  line["selected"] = outcome.selected;
  line["malicious_selected"] = malicious_selected;
  line["updates"] = {{"received", outcome.received.size()},
                     {"rejected", outcome.rejected},
                     {"missing", outcome.missing.size()}};
  line["rejections"] = outcome.rejections;
  line["seconds"] = {{"broadcast", outcome.broadcast_s},
                     {"train_wait", outcome.train_wait_s},
                     {"aggregate", outcome.aggregate_s},
                     {"hook", hook_s},
                     {"eval", eval_s},
                     {"total", total}};
  line["before"] = nlohmann::json::array();
  for (const auto& v : outcome.verdicts) line["before"].push_back(to_json(v));
  line["detection"] = detection(outcome, options_.malicious);
  line["hooks"] = outcome.hooks;

  spdlog::info(
      "round {}: ACC {:.2f}%  ASR {}{}  updates {}/{}  ({} malicious)  "
      "hook {:.1f}s  round {:.1f}s",
      round, line["acc"].get<double>(),
      line["asr"].is_null() ? "-" : fmt::format("{:.2f}%", line["asr"].get<double>()),
      line["asr_pieces"].empty() ? "" : " pieces " + pieces_text(line["asr_pieces"]),
      outcome.received.size(), outcome.selected.size(), malicious_selected, hook_s,
      total);

  history_.push_back(line);
  metrics_text_ += line.dump() + "\n";
  if (!options_.metrics_path.empty()) {
    FEDVAR_RETURN_IF_ERROR(write_file_atomic(options_.metrics_path, metrics_text_));
  }
  if (!options_.checkpoint_path.empty()) {
    FEDVAR_RETURN_IF_ERROR(
        save_resnet(options_.checkpoint_path, model_, eval_.options.normalization,
                    {{kCheckpointRound, std::to_string(round)},
                     {kCheckpointSeed, std::to_string(options_.seed)}}));
  }
  return Status::Ok();
}

}  // namespace fedvar::aggregator
