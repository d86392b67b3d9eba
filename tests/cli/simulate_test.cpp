// `fedvar simulate` end to end: real server and client processes, the table,
// the plot, and nothing left running afterwards, also after Ctrl-C.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using fedvar::testing::run_command;
using fedvar::testing::TempDir;

using fedvar::testing::kData;
using fedvar::testing::kFedvar;

std::string tiny_simulation(const TempDir& dir, int rounds) {
  return kFedvar + " simulate --data " + kData + " --out " + dir.file("sim") +
         " --clients 3 --attackers 1 --rounds " + std::to_string(rounds) +
         " --pool-size 300 --clean-size 100 --test-size 100 --width 4 --batch-size 32"
         " --hook fine-tuning:epochs=1";
}

// Processes whose command line names `dir` (the simulation's outputs); the
// pattern "si[m]" keeps the shell that runs pgrep out of the count.
int processes_using(const TempDir& dir) {
  const auto r = run_command("pgrep -f -c '" + dir.file("si[m]") + "'");
  return r.output.empty() ? 0 : std::stoi(r.output);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Running and not a zombie.
bool alive(pid_t pid) {
  const auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat.ok()) return false;
  const size_t paren = stat.value().rfind(')');
  return paren != std::string::npos && stat.value().substr(paren + 2, 1) != "Z";
}

TEST(SimulateTest, ComparesRunsPrintsTheTableAndDrawsThePlot) {
  TempDir dir;
  const auto r = run_command(tiny_simulation(dir, 2) + " --compare 2>" + dir.file("err"));
  ASSERT_EQ(r.exit_code, 0) << r.output << read_file(dir.file("err")).value();
  EXPECT_NE(r.output.find("| run | rounds | ACC % | ASR %"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| no-defense | 2 |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| fine-tuning-epochs1 | 2 |"), std::string::npos) << r.output;
  const auto svg = read_file(dir.file("sim/plot.svg"));
  ASSERT_TRUE(svg.ok());
  EXPECT_NE(svg.value().find("no-defense"), std::string::npos);
  const auto summary =
      nlohmann::json::parse(read_file(dir.file("sim/summary.json")).value());
  ASSERT_EQ(summary["runs"].size(), 2u);
  for (const auto& run : summary["runs"]) {
    EXPECT_EQ(run["rounds"], 2);
    EXPECT_TRUE(run["asr"].is_number());
    EXPECT_EQ(run["asr_pieces"].size(), 4u);
    EXPECT_TRUE(run["clean_to_target"].is_number());
  }
  EXPECT_EQ(processes_using(dir), 0);
}

TEST(SimulateTest, PoolOverlappingTheServersCleanSetIsRejected) {
  TempDir dir;
  const auto r =
      run_command(kFedvar + " simulate --data " + kData + " --out " + dir.file("sim") +
                  " --pool-size 59500 --clean-size 1000 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--pool-size plus --clean-size"), std::string::npos)
      << r.output;
}

TEST(SimulateTest, StartsFromAGivenCheckpoint) {
  TempDir dir;
  auto r = run_command(tiny_simulation(dir, 1) + " 2>" + dir.file("err"));
  ASSERT_EQ(r.exit_code, 0) << read_file(dir.file("err")).value();
  const std::string checkpoint = dir.file("first.safetensors");
  std::filesystem::rename(dir.file("sim/fine-tuning-epochs1.safetensors"), checkpoint);
  r = run_command(tiny_simulation(dir, 1) + " --init " + checkpoint + " 2>" +
                  dir.file("err"));
  ASSERT_EQ(r.exit_code, 0) << read_file(dir.file("err")).value();
  EXPECT_NE(
      read_file(dir.file("err")).value().find("initial global model from " + checkpoint),
      std::string::npos)
      << read_file(dir.file("err")).value();
  r = run_command(tiny_simulation(dir, 1) + " --init " + dir.file("missing.safetensors") +
                  " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("missing.safetensors"), std::string::npos) << r.output;
}

TEST(SimulateTest, InterruptStopsEveryProcessItStarted) {
  TempDir dir;
  const std::string pid_file = dir.file("pid");
  ASSERT_EQ(std::system(("bash -c '" + tiny_simulation(dir, 1000) +
                         " > /dev/null 2>&1 & echo $! > " + pid_file + "'")
                            .c_str()),
            0);
  const pid_t pid = std::stoi(read_file(pid_file).value());
  // Wait until a round has been evaluated, i.e. every process is up.
  for (int i = 0;
       i < 1200 && !std::filesystem::exists(dir.file("sim/fine-tuning-epochs1.jsonl"));
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(std::filesystem::exists(dir.file("sim/fine-tuning-epochs1.jsonl")));
  std::vector<pid_t> children;
  for (const auto& line :
       split_lines(run_command("pgrep -P " + std::to_string(pid)).output)) {
    children.push_back(std::stoi(line));
  }
  EXPECT_EQ(children.size(), 4u) << "a server and 3 clients";
  ASSERT_EQ(kill(pid, SIGINT), 0);
  for (int i = 0; i < 200 && alive(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(alive(pid));
  for (pid_t child : children)
    EXPECT_FALSE(alive(child)) << "process " << child << " left behind";
  EXPECT_EQ(processes_using(dir), 0);
}

}  // namespace
}  // namespace fedvar
