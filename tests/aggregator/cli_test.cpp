// The fedvar binary as a user runs it: real process, real files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "core/model_io.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using testing::run_command;
using testing::TempDir;

using fedvar::testing::kData;
using fedvar::testing::kFedvar;

TEST(Cli, TrainThenEvalPrintsJsonAndWritesSidecar) {
  TempDir dir;
  const std::string model = dir.file("m.safetensors");
  auto train = run_command(kFedvar + " train --data " + kData + " --out " + model +
                           " --range 0:256 --test-range 0:100 --width 4 --epochs 1"
                           " --poison dba:pieces=4 --target 2 --device cpu 2>/dev/null");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  auto report = nlohmann::json::parse(train.output);
  EXPECT_EQ(report["arch"]["width"], 4);
  EXPECT_EQ(report["trigger"], "dba:pieces=4,piece=all,bar=1x4,gap=2,origin=1x1");
  EXPECT_TRUE(report.contains("asr"));
  ASSERT_TRUE(std::filesystem::exists(model + ".json"));
  auto loaded = load_resnet(model);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_TRUE(loaded->normalization.has_value());

  auto eval = run_command(kFedvar + " eval --model " + model + " --data " + kData +
                          " --range 0:100 --trigger dba:pieces=4 --target 2 2>/dev/null");
  ASSERT_EQ(eval.exit_code, 0);
  auto result = nlohmann::json::parse(eval.output);
  EXPECT_GE(result["acc"].get<double>(), 0.0);
  EXPECT_LE(result["acc"].get<double>(), 100.0);
  EXPECT_TRUE(result.contains("asr"));
  // Same model, same rows: eval agrees with what train reported.
  EXPECT_DOUBLE_EQ(result["acc"].get<double>(), report["acc"].get<double>());
}

TEST(Cli, BadInputIsOneLineErrorAndExitTwo) {
  TempDir dir;
  const std::string out = dir.file("m.safetensors");
  const std::string train = kFedvar + " train --data " + kData + " --out " + out;
  struct Case {
    std::string command;
    std::string message;
  };
  const std::vector<Case> cases = {
      {kFedvar + " train --data /nonexistent --out " + out, "/nonexistent"},
      {train + " --range 10:5", "range"},
      {train + " --range 0:10 --poison star:size=3", "star"},
      {train + " --range 0:10 --poison patch:size=40", "size"},
      {kFedvar + " eval --model " + dir.file("missing.safetensors") + " --data " + kData,
       "missing.safetensors"},
  };
  for (const auto& c : cases) {
    auto r = run_command(c.command + " 2>&1 >/dev/null");
    EXPECT_EQ(r.exit_code, 2) << c.command << "\n" << r.output;
    EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(Cli, CorruptModelFileIsRejected) {
  TempDir dir;
  const std::string model = dir.file("bad.safetensors");
  ASSERT_EQ(run_command("printf 'garbage-bytes' > " + model).exit_code, 0);
  auto r = run_command(kFedvar + " eval --model " + model + " --data " + kData +
                       " 2>&1 >/dev/null");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("error:"), std::string::npos);
}

}  // namespace
}  // namespace fedvar
