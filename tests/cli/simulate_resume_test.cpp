// `fedvar simulate --resume DIR`: a simulation killed with SIGKILL in the
// middle of its first run goes on with the settings it was started with: the
// first run from its last complete round, the second from the start; each
// round recorded once. Resuming a finished simulation runs nothing.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include "core/file_io.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using fedvar::testing::kData;
using fedvar::testing::kFedvar;
using fedvar::testing::run_command;
using fedvar::testing::TempDir;

constexpr int kRounds = 5;

std::vector<int> recorded_rounds(const std::string& path) {
  std::vector<int> rounds;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rounds.push_back(nlohmann::json::parse(line)["round"].get<int>());
  }
  return rounds;
}

// Processes whose command line names `dir`; "[/]" keeps pgrep's own shell
// out of the count.
int processes_using(const std::string& dir) {
  const auto r = run_command("pgrep -f -c '" + dir + "[/]'");
  return r.output.empty() ? 0 : std::stoi(r.output);
}

TEST(SimulateResume, AKilledSimulationGoesOnWhereEachRunStopped) {
  TempDir dir;
  const std::string sim = dir.file("sim");
  const std::string command =
      kFedvar + " simulate --data " + kData + " --out " + sim +
      " --clients 2 --attackers 1 --rounds " + std::to_string(kRounds) +
      " --pool-size 200 --clean-size 100 --test-size 100 --width 4"
      " --batch-size 32 --hook fine-tuning:epochs=1 --compare";
  const std::string pid_file = dir.file("pid");
  ASSERT_EQ(std::system(("bash -c '" + command + " > /dev/null 2>" +
                         dir.file("first.log") + " & echo $! > " + pid_file + "'")
                            .c_str()),
            0);
  const pid_t pid = std::stoi(read_file(pid_file).value());
  const std::string first_run = sim + "/no-defense.jsonl";
  for (int i = 0; i < 2400 && recorded_rounds(first_run).size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(recorded_rounds(first_run).size(), 2u)
      << read_file(dir.file("first.log")).value();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // Its server and clients get SIGTERM as it dies (PR_SET_PDEATHSIG) and stop
  // within a moment; a record in progress may still complete.
  for (int i = 0; i < 200 && processes_using(sim) > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(processes_using(sim), 0);
  const size_t at_kill = recorded_rounds(first_run).size();
  ASSERT_LT(at_kill, static_cast<size_t>(kRounds))
      << "the first run ended before the kill";

  auto r =
      run_command(kFedvar + " simulate --resume " + sim + " 2>" + dir.file("resume.log"));
  const std::string log = read_file(dir.file("resume.log")).value();
  ASSERT_EQ(r.exit_code, 0) << r.output << log;
  // The kill left the checkpoint at the last recorded round, or one before
  // it when it came between the metrics line and the checkpoint.
  const std::string resumed = "run 'no-defense' resumes after round ";
  EXPECT_TRUE(log.find(resumed + std::to_string(at_kill)) != std::string::npos ||
              log.find(resumed + std::to_string(at_kill - 1)) != std::string::npos)
      << log;
  EXPECT_NE(r.output.find("| no-defense | " + std::to_string(kRounds) + " |"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("| fine-tuning-epochs1 | " + std::to_string(kRounds) + " |"),
            std::string::npos)
      << r.output;
  const std::vector<int> all = {1, 2, 3, 4, 5};
  EXPECT_EQ(recorded_rounds(first_run), all);
  EXPECT_EQ(recorded_rounds(sim + "/fine-tuning-epochs1.jsonl"), all);

  r = run_command(kFedvar + " simulate --resume " + sim + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("run 'no-defense' is complete"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("run 'fine-tuning-epochs1' is complete"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("sending the global model"), std::string::npos) << r.output;
}

TEST(SimulateResume, TakesItsSettingsFromTheDirectoryAlone) {
  TempDir dir;
  auto r = run_command(kFedvar + " simulate --resume " + dir.path() + " --rounds 3 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--rounds"), std::string::npos) << r.output;
  r = run_command(kFedvar + " simulate --resume " + dir.path() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(dir.file("simulate.json")), std::string::npos) << r.output;
  ASSERT_TRUE(
      write_file_atomic(dir.file("simulate.json"), "{\"rounds\": \"many\"}").ok());
  r = run_command(kFedvar + " simulate --resume " + dir.path() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not the settings of a simulation"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace fedvar
