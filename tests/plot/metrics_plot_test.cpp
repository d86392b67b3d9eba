// read_metrics and render_svg: each kind of bad metrics line is an error that
// names the file and line; the SVG is well-formed XML with one polyline per run
// per panel, points where the panel geometry says, and the same bytes each time.
#include "plot/metrics_plot.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace fedvar::plot {
namespace {

using fedvar::testing::run_command;
using fedvar::testing::TempDir;

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  EXPECT_TRUE(write_file_atomic(path, text).ok());
  return path;
}

// The status of reading a file whose contents are `text`.
Status read_error(const std::string& text) {
  TempDir dir;
  auto r = read_metrics(write(dir, "m.jsonl", text));
  return r.ok() ? Status::Ok() : r.status();
}

RunSeries make_run(const std::string& label, int rounds, bool with_asr) {
  RunSeries run{label, {}};
  for (int r = 1; r <= rounds; ++r) {
    RoundPoint p{r, 50.0 + r, std::nullopt, {}};
    if (with_asr) p.asr = 90.0 - r;
    run.points.push_back(p);
  }
  return run;
}

// Parses `svg` with Python's XML parser; returns its root tag, or the error.
std::string parse_xml(const std::string& svg) {
  TempDir dir;
  const std::string path = write(dir, "plot.svg", svg);
  auto r = run_command(
      "/usr/bin/python3 -c 'import xml.etree.ElementTree as E,sys; "
      "print(E.parse(sys.argv[1]).getroot().tag)' " +
      path + " 2>&1");
  return r.exit_code == 0 ? r.output : "error: " + r.output;
}

// The points of every polyline, in document order, as (x, y) pairs.
std::vector<std::vector<std::pair<double, double>>> polylines(const std::string& svg) {
  std::vector<std::vector<std::pair<double, double>>> lines;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    const size_t begin = svg.find("points=\"", at) + 8;
    const std::string points = svg.substr(begin, svg.find('"', begin) - begin);
    lines.emplace_back();
    double x = 0, y = 0;
    int used = 0;
    for (const char* p = points.c_str(); std::sscanf(p, "%lf,%lf%n", &x, &y, &used) == 2;
         p += used) {
      lines.back().emplace_back(x, y);
    }
  }
  return lines;
}

const std::string kSvgRoot = "{http://www.w3.org/2000/svg}svg\n";

TEST(ReadMetrics, ReadsRoundsAndIgnoresUnknownKeysAndBlankLines) {
  TempDir dir;
  const std::string path = write(
      dir, "m.jsonl",
      R"({"run": "vardefense", "round": 1, "acc": 81.2, "asr": 95.3, "skipped": false,)"
      R"( "clients": [1, 2], "defense": {"pruned": 3}})"
      "\n\n   \n"
      R"({"round": 2, "acc": 83, "asr": 12.5, "asr_pieces": [40.1, 30.2, 20.0, 35.5]})"
      "\r\n");
  auto run = read_metrics(path);
  ASSERT_TRUE(run.ok()) << run.status().message();
  EXPECT_EQ(run->label, "vardefense");
  ASSERT_EQ(run->points.size(), 2u);
  EXPECT_EQ(run->points[0].round, 1);
  EXPECT_DOUBLE_EQ(run->points[0].acc, 81.2);
  EXPECT_DOUBLE_EQ(*run->points[0].asr, 95.3);
  EXPECT_TRUE(run->points[0].asr_pieces.empty());
  EXPECT_DOUBLE_EQ(run->points[1].acc, 83);
  EXPECT_EQ(run->points[1].asr_pieces, (std::vector<double>{40.1, 30.2, 20.0, 35.5}));
}

TEST(ReadMetrics, NullOrMissingAsrIsNoneAndLabelFallsBackToStem) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("out"));
  const std::string path = write(dir, "out/hook.jsonl",
                                 "{\"round\": 1, \"acc\": 10, \"asr\": null}\n"
                                 "{\"round\": 2, \"acc\": 20}");
  auto run = read_metrics(path);
  ASSERT_TRUE(run.ok()) << run.status().message();
  EXPECT_EQ(run->label, "hook");
  ASSERT_EQ(run->points.size(), 2u);
  EXPECT_FALSE(run->points[0].asr.has_value());
  EXPECT_FALSE(run->points[1].asr.has_value());
}

TEST(ReadMetrics, SortsRoundsAndALaterLineReplacesARound) {
  TempDir dir;
  auto run =
      read_metrics(write(dir, "m.jsonl",
                         "{\"round\": 2, \"acc\": 20}\n{\"round\": 1, \"acc\": 10}\n"
                         "{\"round\": 2, \"acc\": 25}\n"));
  ASSERT_TRUE(run.ok()) << run.status().message();
  ASSERT_EQ(run->points.size(), 2u);
  EXPECT_EQ(run->points[0].round, 1);
  EXPECT_DOUBLE_EQ(run->points[1].acc, 25);
}

TEST(ReadMetrics, AMissingFileIsNotFound) {
  TempDir dir;
  auto run = read_metrics(dir.file("nope.jsonl"));
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), Code::kNotFound);
  EXPECT_NE(run.status().message().find("nope.jsonl"), std::string::npos);
}

TEST(ReadMetrics, EachBadLineNamesFileAndLine) {
  TempDir dir;
  const std::string good = "{\"round\": 1, \"acc\": 10}\n\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"round\": 2, \"acc\": ", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{\"round\": 2}", "no \"acc\""},
      {"{\"acc\": 5}", "no \"round\""},
      {"{\"round\": 2, \"acc\": \"81\"}", "\"acc\" is not a number"},
      {"{\"round\": 1.5, \"acc\": 5}", "not an integer"},
      {"{\"round\": 0, \"acc\": 5}", "not an integer in [1, "},
      {"{\"round\": -3, \"acc\": 5}", "not an integer in [1, "},
      {"{\"round\": 99999999999999999999, \"acc\": 5}", "\"round\""},
      {"{\"round\": 2, \"acc\": 150}", "not a percent"},
      {"{\"round\": 2, \"acc\": 5, \"asr\": true}", "\"asr\" is not a number"},
      {"{\"round\": 2, \"acc\": 5, \"asr_pieces\": 3}", "not an array"},
      {"{\"round\": 2, \"acc\": 5, \"asr_pieces\": [1, \"x\"]}", "asr_pieces[1]"},
      {"{\"round\": 2, \"acc\": 5, \"run\": 7}", "\"run\" is not a string"},
  };
  for (const auto& [line, what] : cases) {
    const std::string path = write(dir, "bad.jsonl", good + line + "\n");
    auto run = read_metrics(path);
    ASSERT_FALSE(run.ok()) << line;
    EXPECT_EQ(run.status().code(), Code::kInvalidArgument) << line;
    EXPECT_EQ(run.status().message().rfind(path + ":3: ", 0), 0u)
        << run.status().message();
    EXPECT_NE(run.status().message().find(what), std::string::npos)
        << run.status().message();
  }
}

TEST(ReadMetrics, AFileWithoutRoundsIsInvalid) {
  for (const std::string text : {"", "\n  \n\n"}) {
    const Status st = read_error(text);
    EXPECT_EQ(st.code(), Code::kInvalidArgument);
    EXPECT_NE(st.message().find("no rounds"), std::string::npos) << st.message();
  }
}

TEST(RenderSvg, IsWellFormedWithOnePolylinePerRunPerPanel) {
  const std::string svg = render_svg(
      {make_run("a", 20, true), make_run("b", 20, true), make_run("c", 5, false)},
      PlotOptions{});
  EXPECT_EQ(parse_xml(svg), kSvgRoot);
  EXPECT_NE(svg.find("width=\"900\" height=\"640\" viewBox=\"0 0 900 640\""),
            std::string::npos);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 5u);  // a, b, c in ACC; a, b in ASR
  EXPECT_EQ(lines[0].size(), 20u);
  EXPECT_EQ(lines[2].size(), 20u);
  EXPECT_EQ(lines[4].size(), 5u);
  EXPECT_NE(svg.find("Clean accuracy (ACC, %)"), std::string::npos);
  EXPECT_NE(svg.find("Attack success rate (ASR, %)"), std::string::npos);
}

TEST(RenderSvg, EscapesLabelsAndTitle) {
  PlotOptions opts;
  opts.title = "a \"b\" & 'c' <d>";
  const std::string svg = render_svg({make_run("<&>", 3, true)}, opts);
  EXPECT_EQ(parse_xml(svg), kSvgRoot);
  EXPECT_NE(svg.find("&lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find("a &quot;b&quot; &amp; &apos;c&apos; &lt;d&gt;"), std::string::npos);
  EXPECT_EQ(parse_xml(render_svg({make_run("bad \x01 \xff utf-8", 3, true)}, opts)),
            kSvgRoot);
}

TEST(RenderSvg, IsDeterministic) {
  const std::vector<RunSeries> runs = {make_run("a", 7, true), make_run("b", 9, false)};
  EXPECT_EQ(render_svg(runs, PlotOptions{}), render_svg(runs, PlotOptions{}));
}

TEST(RenderSvg, PointsFollowThePanelGeometry) {
  RunSeries run{"r", {{1, 100, 0.0, {}}, {2, 50, 50.0, {}}, {4, 0, 100.0, {}}}};
  const PlotOptions opts;
  const auto lines = polylines(render_svg({run}, opts));
  ASSERT_EQ(lines.size(), 2u);
  const PanelBox acc = panel_box(opts, 0), asr = panel_box(opts, 1);
  EXPECT_GE(asr.top, acc.top + acc.height);
  ASSERT_EQ(lines[0].size(), 3u);
  EXPECT_NEAR(lines[0][0].first, acc.left, 0.05);
  EXPECT_NEAR(lines[0][0].second, acc.top, 0.05);  // 100 % at the top
  EXPECT_NEAR(lines[0][1].second, acc.top + acc.height / 2, 0.05);
  EXPECT_NEAR(lines[0][2].first, acc.left + acc.width, 0.05);  // the last round
  EXPECT_NEAR(lines[0][2].second, acc.top + acc.height, 0.05);
  EXPECT_NEAR(lines[1][0].second, asr.top + asr.height, 0.05);  // ASR 0
  EXPECT_NEAR(lines[1][2].second, asr.top, 0.05);               // ASR 100
}

TEST(RenderSvg, ASingleRoundRunIsAPoint) {
  const std::string svg = render_svg({make_run("one", 1, true)}, PlotOptions{});
  EXPECT_EQ(parse_xml(svg), kSvgRoot);
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  ASSERT_EQ(polylines(svg).size(), 2u);
}

TEST(RenderSvg, PiecesAddADashedLineEach) {
  RunSeries run = make_run("dba", 4, true);
  for (auto& p : run.points) p.asr_pieces = {10, 20, 30};
  PlotOptions opts;
  EXPECT_EQ(polylines(render_svg({run}, opts)).size(), 2u);
  opts.pieces = true;
  const std::string svg = render_svg({run}, opts);
  EXPECT_EQ(parse_xml(svg), kSvgRoot);
  EXPECT_EQ(polylines(svg).size(), 5u);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);
}

TEST(RenderSvg, RunsWithoutAsrLeaveTheAsrPanelEmpty) {
  const std::string svg = render_svg({make_run("clean", 6, false)}, PlotOptions{});
  EXPECT_EQ(polylines(svg).size(), 1u);
  EXPECT_NE(svg.find("no ASR in these runs"), std::string::npos);
}

}  // namespace
}  // namespace fedvar::plot
