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
  EXPECT_GE(result["clean_to_target"].get<double>(), 0.0);
  EXPECT_LE(result["clean_to_target"].get<double>(), 100.0);
  // Same model, same rows: eval agrees with what train reported.
  EXPECT_DOUBLE_EQ(result["acc"].get<double>(), report["acc"].get<double>());
}

// --init continues from a model: its architecture and normalization win, and
// training changes its weights.
TEST(Cli, TrainInitContinuesFromAModel) {
  TempDir dir;
  const std::string first = dir.file("first.safetensors");
  const std::string second = dir.file("second.safetensors");
  ASSERT_EQ(run_command(kFedvar + " train --data " + kData + " --out " + first +
                        " --range 0:128 --test-range 0:50 --width 4 --epochs 1"
                        " --normalize 0.5,0.25 --device cpu 2>/dev/null")
                .exit_code,
            0);
  auto more = run_command(kFedvar + " train --data " + kData + " --init " + first +
                          " --out " + second +
                          " --range 128:256 --test-range 0:50 --width 16 --epochs 1"
                          " --lr 0.01 --device cpu 2>/dev/null");
  ASSERT_EQ(more.exit_code, 0) << more.output;
  const auto report = nlohmann::json::parse(more.output);
  EXPECT_EQ(report["arch"]["width"], 4) << "the file's width wins over --width";
  EXPECT_EQ(report["init"], first);
  auto a = load_resnet(first);
  auto b = load_resnet(second);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(b->normalization.has_value());
  EXPECT_EQ(b->normalization->to_string(), a->normalization->to_string());
  EXPECT_FALSE(torch::equal(resnet_state(a->model).tensors.at("fc.weight"),
                            resnet_state(b->model).tensors.at("fc.weight")));

  auto missing = run_command(kFedvar + " train --data " + kData + " --init " +
                             dir.file("nope.safetensors") + " --out " + second +
                             " --range 0:10 2>&1");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("nope.safetensors"), std::string::npos) << missing.output;
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
