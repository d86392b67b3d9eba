// fedvar purify as a user runs it: each bad input is a one-line error and
// exit code 2; a good run writes a model that loads and prints a report.
#include <gtest/gtest.h>
#include <torch/torch.h>
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

std::string make_model(const TempDir& dir, int64_t in_channels, const std::string& name) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{in_channels, 10, Stem::kCifar, 4});
  const std::string path = dir.file(name);
  EXPECT_TRUE(save_resnet(path, model, std::nullopt).ok());
  return path;
}

TEST(PurifyCli, WritesAModelAndAReport) {
  TempDir dir;
  const std::string in = make_model(dir, 1, "in.safetensors");
  const std::string out = dir.file("out.safetensors");
  auto r = run_command(kFedvar + " purify --model " + in + " --out " + out + " --data " +
                       kData +
                       " --range -200: --device cpu --normalize 0.286,0.353"
                       " --defense vardefense:share_steps=2,final_epochs=1 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto report = nlohmann::json::parse(r.output);
  EXPECT_EQ(report["defense"], "vardefense");
  EXPECT_EQ(report["clean_images"], 200);
  EXPECT_TRUE(report.contains("acc_before"));
  EXPECT_TRUE(report.contains("acc_after"));
  EXPECT_GT(report["pruned_total"].get<int>(), 0);
  auto loaded = load_resnet(out);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->metadata.at("purified_by"), "vardefense");
}

TEST(PurifyCli, EachBadInputIsExitTwoWithAMessage) {
  TempDir dir;
  const std::string gray = make_model(dir, 1, "gray.safetensors");
  const std::string rgb = make_model(dir, 3, "rgb.safetensors");
  const std::string out = dir.file("out.safetensors");
  const auto purify = [&](const std::string& model, const std::string& extra) {
    return kFedvar + " purify --model " + model + " --out " + out + " --data " + kData +
           " " + extra;
  };
  struct Case {
    std::string command;
    std::string message;
  };
  const std::vector<Case> cases = {
      {purify(dir.file("nope.safetensors"), "--range 0:100"), "nope.safetensors"},
      {purify(rgb, "--range 0:100"), "channel"},
      {purify(gray, "--range 100:100"), "range"},
      {purify(gray, "--range 59000:70000"), "range"},
      {purify(gray, "--range 0:100 --defense magic"), "magic"},
      {purify(gray, "--range 0:100 --defense vardefense:alpha=x"), "alpha"},
      {purify(gray, "--range 0:100 --normalize 0.5"), "normalization"},
  };
  for (const auto& c : cases) {
    auto r = run_command(c.command + " 2>&1 >/dev/null");
    EXPECT_EQ(r.exit_code, 2) << c.command << "\n" << r.output;
    EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.command << "\n"
                                                           << r.output;
    EXPECT_FALSE(std::filesystem::exists(out)) << c.command;
  }
}

}  // namespace
}  // namespace fedvar
