#include "simulate/summary.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "core/file_io.h"
#include "core/log.h"
#include "plot/metrics_plot.h"

namespace fedvar::simulate {
namespace {

std::string percent(const nlohmann::json& value) {
  return value.is_number() ? fmt::format("{:.2f}", value.get<double>()) : "-";
}

Result<std::vector<nlohmann::json>> parse_lines(const std::string& text,
                                                const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) return Status::DataLoss(path + ": a line is not JSON");
    lines.push_back(std::move(parsed));
  }
  if (lines.empty()) return Status::DataLoss(path + " has no rounds");
  return lines;
}

// One run's summary: the last round, the worst ASR, where the time went.
nlohmann::json summarize(const std::string& run,
                         const std::vector<nlohmann::json>& lines) {
  const nlohmann::json& last = lines.back();
  double max_asr = 0, total = 0, train_wait = 0, hook = 0, eval = 0;
  int tp = 0, fp = 0, fn = 0;  // the before-rules' exclusions, all rounds
  for (const auto& l : lines) {
    if (l.contains("detection")) {
      tp += l["detection"]["tp"].get<int>();
      fp += l["detection"]["fp"].get<int>();
      fn += l["detection"]["fn"].get<int>();
    }
    if (l["asr"].is_number()) max_asr = std::max(max_asr, l["asr"].get<double>());
    total += l["seconds"]["total"].get<double>();
    train_wait += l["seconds"]["train_wait"].get<double>();
    hook += l["seconds"]["hook"].get<double>();
    eval += l["seconds"]["eval"].get<double>();
  }
  const double rounds = static_cast<double>(lines.size());
  const double outside = total - train_wait;
  return {{"run", run},
          {"rounds", lines.size()},
          {"acc", last["acc"]},
          {"asr", last["asr"]},
          {"asr_pieces", last["asr_pieces"]},
          {"max_asr", last["asr"].is_number() ? nlohmann::json(max_asr) : nullptr},
          {"clean_to_target", last.value("clean_to_target", nlohmann::json())},
          {"detection", {{"tp", tp}, {"fp", fp}, {"fn", fn}}},
          {"seconds_per_round", total / rounds},
          {"hook_seconds_per_round", hook / rounds},
          {"eval_seconds_per_round", eval / rounds},
          // Share of round time outside client training (and transfer), with
          // and without the hooks. The evaluation is not in the round time:
          // it overlaps the next round's training (on one machine it shares
          // the CPU with the clients).
          {"outside_training_share", total > 0 ? outside / total : 0.0},
          {"server_overhead_share", total > 0 ? (outside - hook) / total : 0.0}};
}

std::string table(const std::vector<nlohmann::json>& summaries) {
  std::string t =
      "| run | rounds | ACC % | ASR % | ASR per piece % | max ASR % | clean to target % |"
      " excluded TP / FP / FN | s/round | hook s/round | outside training |"
      " server overhead |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : summaries) {
    std::string pieces;
    for (const auto& p : s["asr_pieces"])
      pieces += (pieces.empty() ? "" : " / ") + percent(p);
    const auto& d = s["detection"];
    t += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {:.1f} | {:.1f} | {:.1f} % |"
        " {:.2f} % |\n",
        s["run"].get<std::string>(), s["rounds"].get<int>(), percent(s["acc"]),
        percent(s["asr"]), pieces.empty() ? "-" : pieces, percent(s["max_asr"]),
        percent(s["clean_to_target"]), d["tp"].get<int>(), d["fp"].get<int>(),
        d["fn"].get<int>(), s["seconds_per_round"].get<double>(),
        s["hook_seconds_per_round"].get<double>(),
        100 * s["outside_training_share"].get<double>(),
        100 * s["server_overhead_share"].get<double>());
  }
  return t;
}

}  // namespace

Status report_simulation(const std::string& out, const std::vector<std::string>& runs,
                         nlohmann::json& result) {
  std::vector<nlohmann::json> summaries;
  std::vector<plot::RunSeries> series;
  for (const std::string& run : runs) {
    const std::string path = out + "/" + run + ".jsonl";
    FEDVAR_ASSIGN_OR_RETURN(const std::string text, read_file(path));
    FEDVAR_ASSIGN_OR_RETURN(auto lines, parse_lines(text, path));
    summaries.push_back(summarize(run, lines));
    FEDVAR_ASSIGN_OR_RETURN(auto s, plot::parse_metrics(text, path));
    series.push_back(std::move(s));
  }
  plot::PlotOptions options;
  options.pieces = true;
  FEDVAR_RETURN_IF_ERROR(
      write_file_atomic(out + "/plot.svg", plot::render_svg(series, options)));
  result = {
      {"runs", summaries}, {"plot", out + "/plot.svg"}, {"table", table(summaries)}};
  FEDVAR_RETURN_IF_ERROR(write_file_atomic(out + "/summary.json", result.dump(2) + "\n"));
  return Status::Ok();
}

}  // namespace fedvar::simulate
