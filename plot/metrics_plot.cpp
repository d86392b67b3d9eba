#include "plot/metrics_plot.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <utility>

#include "core/file_io.h"

namespace fedvar::plot {
namespace {

using nlohmann::json;

struct ParsedLine {
  RoundPoint point;
  std::optional<std::string> run;
};

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

// `v` as a percent in [0, 100]; `name` says which value in an error.
Result<double> read_percent(const json& v, const std::string& name) {
  if (!v.is_number()) return Status::InvalidArgument("\"" + name + "\" is not a number");
  const double x = v.get<double>();
  if (!(x >= 0 && x <= 100)) {
    return Status::InvalidArgument("\"" + name + "\" is " + v.dump() +
                                   ", not a percent in [0, 100]");
  }
  return x;
}

Result<int64_t> read_round(const json& j) {
  const auto it = j.find("round");
  if (it == j.end()) return Status::InvalidArgument("no \"round\"");
  if (!it->is_number_unsigned() || it->get<uint64_t>() < 1 ||
      it->get<uint64_t>() > static_cast<uint64_t>(kMaxRound)) {
    return Status::InvalidArgument("\"round\" is " + it->dump() +
                                   ", not an integer in [1, " +
                                   std::to_string(kMaxRound) + "]");
  }
  return it->get<int64_t>();
}

// The optional keys: asr (number or null), asr_pieces (array), run (string).
Status read_optional(const json& j, ParsedLine& out) {
  const auto asr = j.find("asr");
  if (asr != j.end() && !asr->is_null()) {
    FEDVAR_ASSIGN_OR_RETURN(out.point.asr, read_percent(*asr, "asr"));
  }
  const auto pieces = j.find("asr_pieces");
  if (pieces != j.end() && !pieces->is_null()) {
    if (!pieces->is_array())
      return Status::InvalidArgument("\"asr_pieces\" is not an array");
    for (size_t i = 0; i < pieces->size(); ++i) {
      const std::string name = "asr_pieces[" + std::to_string(i) + "]";
      FEDVAR_ASSIGN_OR_RETURN(double x, read_percent((*pieces)[i], name));
      out.point.asr_pieces.push_back(x);
    }
  }
  const auto run = j.find("run");
  if (run != j.end() && !run->is_null()) {
    if (!run->is_string()) return Status::InvalidArgument("\"run\" is not a string");
    if (!run->get_ref<const std::string&>().empty()) out.run = run->get<std::string>();
  }
  return Status::Ok();
}

Result<ParsedLine> parse_object(const json& j) {
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");
  ParsedLine out;
  FEDVAR_ASSIGN_OR_RETURN(out.point.round, read_round(j));
  const auto acc = j.find("acc");
  if (acc == j.end()) return Status::InvalidArgument("no \"acc\"");
  FEDVAR_ASSIGN_OR_RETURN(out.point.acc, read_percent(*acc, "acc"));
  FEDVAR_RETURN_IF_ERROR(read_optional(j, out));
  return out;
}

Result<ParsedLine> parse_line(const std::string& line) {
  try {
    return parse_object(json::parse(line));
  } catch (const json::parse_error& e) {
    return Status::InvalidArgument("not valid JSON (at byte " + std::to_string(e.byte) +
                                   ")");
  } catch (const json::exception& e) {  // a type check missed above: a bug
    return Status::Internal(e.what());
  }
}

}  // namespace

Result<RunSeries> read_metrics(const std::string& path) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string text, read_file(path));
  return parse_metrics(text, path);
}

Result<RunSeries> parse_metrics(const std::string& text, const std::string& path) {
  std::map<int64_t, RoundPoint> rounds;  // a resumed run rewrites its rounds
  std::optional<std::string> label;
  std::istringstream in(text);
  std::string line;
  for (size_t line_no = 1; std::getline(in, line); ++line_no) {
    if (is_blank(line)) continue;
    auto parsed = parse_line(line);
    const std::string where = path + ":" + std::to_string(line_no);
    if (!parsed.ok()) return parsed.status().with_context(where);
    if (!label) label = parsed->run;
    rounds[parsed->point.round] = std::move(parsed->point);
  }
  if (rounds.empty()) return Status::InvalidArgument(path + ": no rounds in the file");
  RunSeries series;
  series.label = label ? *label : std::filesystem::path(path).stem().string();
  for (auto& entry : rounds) series.points.push_back(std::move(entry.second));
  return series;
}

namespace {

constexpr double kLeft = 64;          // room for the y tick labels
constexpr double kLegendWidth = 200;  // the legend column on the right
constexpr double kTop = 72;           // title and the first panel's heading
constexpr double kGap = 72;           // x tick labels, then the second heading
constexpr double kBottom = 56;        // x tick labels and the axis name
constexpr size_t kMaxMarkers = 50;    // more points than this: no circles
constexpr size_t kLegendChars = 20;   // longer labels are cut with an ellipsis
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

constexpr const char* kSolid = " stroke-width=\"2\"";
constexpr const char* kDashed = " stroke-width=\"1\" stroke-dasharray=\"4 3\"";

using Points = std::vector<std::pair<int64_t, double>>;  // (round, percent)

int canvas_width(const PlotOptions& o) { return std::max(o.width, kMinWidth); }
int canvas_height(const PlotOptions& o) { return std::max(o.height, kMinHeight); }

std::string num(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", v + 0.0);  // + 0.0: no "-0.0"
  return buffer;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if there is none.
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  const size_t n = b < 0x80                 ? 1
                   : b >= 0xC2 && b <= 0xDF ? 2
                   : b >= 0xE0 && b <= 0xEF ? 3
                   : b >= 0xF0 && b <= 0xF4 ? 4
                                            : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// `s` as XML character data: escaped, control characters and invalid UTF-8
// as '?', cut to `max_chars` characters with an ellipsis.
std::string xml_text(const std::string& s, size_t max_chars = std::string::npos) {
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++chars) {
    if (chars == max_chars) return out + "\xE2\x80\xA6";
    const size_t n = utf8_length(s, i);
    const char c = s[i];
    if (n == 0 || (n == 1 && static_cast<unsigned char>(c) < 0x20)) {
      out += '?';
    } else if (c == '&' || c == '<' || c == '>' || c == '"' || c == '\'') {
      out += c == '&'   ? "&amp;"
             : c == '<' ? "&lt;"
             : c == '>' ? "&gt;"
             : c == '"' ? "&quot;"
                        : "&apos;";
    } else {
      out.append(s, i, n);
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

void add_text(std::string& out, double x, double y, const std::string& text,
              const char* anchor, const std::string& extra = "") {
  out += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + anchor +
         "\"" + extra + ">" + text + "</text>\n";
}

void add_line(std::string& out, double x1, double y1, double x2, double y2,
              const std::string& stroke, const std::string& extra = "") {
  out += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) +
         "\" y2=\"" + num(y2) + "\" stroke=\"" + stroke + "\"" + extra + "/>\n";
}

// Rounds 1..last across the panel's width; a single round sits in the middle.
double x_of(const PanelBox& b, int64_t last, int64_t round) {
  if (last <= 1) return b.left + b.width / 2;
  const double r = std::clamp<double>(static_cast<double>(round), 1, last);
  return b.left + (r - 1) / static_cast<double>(last - 1) * b.width;
}

double y_of(const PanelBox& b, double percent) {
  return b.top + (100 - std::clamp(percent, 0.0, 100.0)) / 100 * b.height;
}

int64_t last_round(const std::vector<RunSeries>& runs) {
  int64_t last = 1;
  for (const auto& run : runs) {
    for (const auto& p : run.points) last = std::max(last, p.round);
  }
  return last;
}

// Multiples of a step of 1, 2 or 5 x 10^k up to the last round; at most 10.
std::vector<int64_t> x_ticks(int64_t last) {
  int64_t step = 1;
  for (int64_t base = 1; last / step > 10; base *= 10) {
    for (int64_t m : {1, 2, 5}) {
      step = base * m;
      if (last / step <= 10) break;
    }
  }
  std::vector<int64_t> ticks;
  for (int64_t r = step; r <= last; r += step) ticks.push_back(r);
  return ticks;
}

void add_panel(std::string& out, const PanelBox& b, int64_t last,
               const std::string& heading) {
  add_text(out, b.left, b.top - 12, xml_text(heading), "start", " font-weight=\"bold\"");
  for (int v = 0; v <= 100; v += 20) {
    const double y = y_of(b, v);
    add_line(out, b.left, y, b.left + b.width, y, v == 0 ? "#999" : "#e0e0e0");
    add_text(out, b.left - 8, y + 4, std::to_string(v), "end");
  }
  const double bottom = b.top + b.height;
  for (int64_t r : x_ticks(last)) {
    const double x = x_of(b, last, r);
    add_line(out, x, bottom, x, bottom + 5, "#999");
    add_text(out, x, bottom + 18, std::to_string(r), "middle");
  }
}

// One run's values as a polyline (and circles when there are few points).
void add_series(std::string& out, const PanelBox& b, int64_t last, const Points& pts,
                const char* colour, const std::string& name, bool dashed) {
  out += std::string("<polyline fill=\"none\" stroke=\"") + colour + "\"" +
         (dashed ? kDashed : kSolid) + " points=\"";
  for (size_t i = 0; i < pts.size(); ++i) {
    out += (i ? " " : "") + num(x_of(b, last, pts[i].first)) + "," +
           num(y_of(b, pts[i].second));
  }
  out += "\"><title>" + xml_text(name) + "</title></polyline>\n";
  if (dashed || pts.size() > kMaxMarkers) return;
  for (const auto& [round, value] : pts) {
    out += "<circle cx=\"" + num(x_of(b, last, round)) + "\" cy=\"" +
           num(y_of(b, value)) + "\" r=\"2.5\" fill=\"" + colour + "\"><title>" +
           xml_text(name) + ", round " + std::to_string(round) + ": " + num(value) +
           "</title></circle>\n";
  }
}

Points collect(const RunSeries& run,
               const std::function<std::optional<double>(const RoundPoint&)>& value) {
  Points pts;
  for (const auto& p : run.points) {
    if (auto v = value(p)) pts.emplace_back(p.round, *v);
  }
  return pts;
}

// Draws run `i` in both panels; returns whether it has any ASR.
bool add_run(std::string& out, const RunSeries& run, size_t i, int64_t last,
             const PlotOptions& opts) {
  const char* colour = kPalette[i % std::size(kPalette)];
  const auto acc = collect(run, [](const RoundPoint& p) { return p.acc; });
  add_series(out, panel_box(opts, 0), last, acc, colour, run.label + " ACC", false);
  const auto asr = collect(run, [](const RoundPoint& p) { return p.asr; });
  if (!asr.empty())
    add_series(out, panel_box(opts, 1), last, asr, colour, run.label + " ASR", false);
  size_t pieces = 0;
  for (const auto& p : run.points) pieces = std::max(pieces, p.asr_pieces.size());
  for (size_t k = 0; opts.pieces && k < pieces; ++k) {
    const auto piece = collect(run, [k](const RoundPoint& p) -> std::optional<double> {
      if (k < p.asr_pieces.size()) return p.asr_pieces[k];
      return std::nullopt;
    });
    add_series(out, panel_box(opts, 1), last, piece, colour,
               run.label + " ASR piece " + std::to_string(k + 1), true);
  }
  return !asr.empty();
}

// A short line of `colour` (dashed or not) and `text`, at (x, y).
void add_legend_entry(std::string& out, double x, double y, const char* colour,
                      const std::string& text, bool dashed) {
  add_line(out, x, y, x + 24, y, colour, dashed ? kDashed : kSolid);
  add_text(out, x + 32, y + 4, text, "start");
}

void add_legend(std::string& out, const std::vector<RunSeries>& runs,
                const PlotOptions& opts) {
  const double x = canvas_width(opts) - kLegendWidth + 20;
  double y = kTop;
  for (size_t i = 0; i < runs.size(); ++i, y += 20) {
    add_legend_entry(out, x, y, kPalette[i % std::size(kPalette)],
                     xml_text(runs[i].label, kLegendChars), false);
  }
  if (opts.pieces) add_legend_entry(out, x, y, "#555", "ASR of a DBA piece", true);
}

}  // namespace

PanelBox panel_box(const PlotOptions& opts, int index) {
  PanelBox b;
  b.left = kLeft;
  b.width = canvas_width(opts) - kLeft - kLegendWidth;
  b.height = (canvas_height(opts) - kTop - kGap - kBottom) / 2;
  b.top = kTop + index * (b.height + kGap);
  return b;
}

std::string render_svg(const std::vector<RunSeries>& runs, const PlotOptions& opts) {
  const std::string w = std::to_string(canvas_width(opts));
  const std::string h = std::to_string(canvas_height(opts));
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + w +
         "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out += "<title>" + xml_text(opts.title) + "</title>\n";
  out += "<rect width=\"" + w + "\" height=\"" + h + "\" fill=\"white\"/>\n";
  add_text(out, kLeft, 28, xml_text(opts.title), "start", " font-size=\"16\"");
  const int64_t last = last_round(runs);
  const PanelBox acc = panel_box(opts, 0), asr = panel_box(opts, 1);
  add_panel(out, acc, last, "Clean accuracy (ACC, %)");
  add_panel(out, asr, last, "Attack success rate (ASR, %)");
  add_text(out, asr.left + asr.width / 2, asr.top + asr.height + 40, "round", "middle");
  bool any_asr = false;
  for (size_t i = 0; i < runs.size(); ++i)
    any_asr = add_run(out, runs[i], i, last, opts) || any_asr;
  if (!any_asr) {
    add_text(out, asr.left + asr.width / 2, asr.top + asr.height / 2,
             "no ASR in these runs (no trigger configured)", "middle", " fill=\"#777\"");
  }
  add_legend(out, runs, opts);
  return out + "</svg>\n";
}

}  // namespace fedvar::plot
