// Round-by-round ACC and ASR of federated runs: reading the server's metrics
// JSON Lines files and drawing them as one standalone SVG document (two
// panels, ACC on top, ASR below). Torch-free; no exception leaves here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fedvar::plot {

// Largest round number read_metrics accepts (keeps the x-axis math in range).
constexpr int64_t kMaxRound = 1'000'000'000;

// One line of a metrics file: the model's numbers after `round` (1-based).
struct RoundPoint {
  int64_t round = 0;
  double acc = 0;                  // clean accuracy, percent in [0, 100]
  std::optional<double> asr;       // attack success rate, percent; none = no trigger
  std::vector<double> asr_pieces;  // ASR of each DBA trigger piece; may be empty
};

// One run: its label and its rounds in ascending order, each round once.
struct RunSeries {
  std::string label;
  std::vector<RoundPoint> points;
};

// Reads the JSON Lines file `path`: keys round, acc, asr, asr_pieces and run
// (the label; default the file's stem); other keys and blank lines are ignored,
// a repeated round replaces the earlier one. kNotFound if the file is missing;
// kInvalidArgument "PATH:LINE: ..." for a bad line, or if there are no rounds.
Result<RunSeries> read_metrics(const std::string& path);

// The same from the file's text (`path` names it in messages and gives the
// default label), for a caller that has read the file already.
Result<RunSeries> parse_metrics(const std::string& text, const std::string& path);

// How render_svg draws.
struct PlotOptions {
  // Text at the top of the picture.
  std::string title = "fedvar: ACC and ASR per round";
  // Also draw each DBA piece's ASR as a thin dashed line in the run's colour.
  bool pieces = false;
  // Size of the picture in pixels; smaller values are raised to kMinWidth/kMinHeight.
  int width = 900;
  int height = 640;
};

constexpr int kMinWidth = 480;
constexpr int kMinHeight = 360;

// Where a panel's plotting area lies in the picture, in pixels (SVG
// coordinates: y grows downwards). Value 100 % is at `top`, 0 % at top + height.
struct PanelBox {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
};

// The plotting area of panel `index` (0 = ACC, 1 = ASR) under `opts`.
PanelBox panel_box(const PlotOptions& opts, int index);

// A standalone SVG 1.1 document of `runs`: one polyline per run per panel (a
// run with no ASR is left out of the ASR panel), a colour per run, a legend.
// Labels and title are XML-escaped; the same input gives the same bytes.
std::string render_svg(const std::vector<RunSeries>& runs, const PlotOptions& opts);

}  // namespace fedvar::plot
