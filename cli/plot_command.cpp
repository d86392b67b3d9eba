// fedvar plot: round-by-round ACC and ASR of metrics JSON Lines files as one SVG.
#include "cli/commands.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "plot/metrics_plot.h"

namespace fedvar::cli {
namespace {

struct PlotArgs {
  std::vector<std::string> metrics;
  std::string out;
  plot::PlotOptions options;
};

// {"label", "rounds", "final_acc", "final_asr"} of one run (final = last round).
nlohmann::json summary(const plot::RunSeries& run) {
  const plot::RoundPoint& last = run.points.back();
  nlohmann::json j = {{"label", run.label},
                      {"rounds", run.points.size()},
                      {"final_acc", last.acc},
                      {"final_asr", nullptr}};
  if (last.asr) j["final_asr"] = *last.asr;
  return j;
}

Status run_plot(const PlotArgs& a, nlohmann::json& result) {
  std::vector<plot::RunSeries> runs;
  nlohmann::json summaries = nlohmann::json::array();
  for (const std::string& path : a.metrics) {
    FEDVAR_ASSIGN_OR_RETURN(auto run, plot::read_metrics(path));
    summaries.push_back(summary(run));
    runs.push_back(std::move(run));
  }
  FEDVAR_RETURN_IF_ERROR(write_file_atomic(a.out, plot::render_svg(runs, a.options)));
  result = {{"out", a.out}, {"runs", std::move(summaries)}};
  return Status::Ok();
}

}  // namespace

void register_plot(CLI::App& app, Commands& commands) {
  auto args = std::make_shared<PlotArgs>();
  auto* cmd =
      app.add_subcommand("plot", "Draw ACC and ASR per round of metrics files as SVG");
  cmd->add_option("metrics", args->metrics, "Metrics files (.jsonl), one run each")
      ->required();
  cmd->add_option("-o,--out", args->out, "SVG file to write")->required();
  cmd->add_option("--title", args->options.title, "Title of the picture");
  cmd->add_flag("--pieces", args->options.pieces,
                "Also draw the ASR of each DBA trigger piece (dashed)");
  cmd->callback([args, &commands] {
    commands.action =
        json_action([args](nlohmann::json& out) { return run_plot(*args, out); });
  });
}

}  // namespace fedvar::cli
