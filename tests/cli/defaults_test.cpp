// Defaults that decide whether a user's own model gives the right answer: a
// file without normalization metadata runs with none (x/255) unless told
// otherwise, and a command uses the cores it may run on.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/model_io.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using testing::kData;
using testing::kFedvar;
using testing::run_command;
using testing::TempDir;

std::string contents(const std::string& path) {
  auto text = read_file(path);
  return text.ok() ? *text : "";
}

struct Eval {
  double acc = -1;
  std::string log;
};

Eval eval(const TempDir& dir, const std::string& model, const std::string& flags) {
  const std::string log = dir.file("eval.log");
  auto r = run_command(kFedvar + " eval --model " + model + " --data " + kData +
                       " --range 0:500 --device cpu " + flags + " 2> " + log);
  EXPECT_EQ(r.exit_code, 0) << flags << ": " << contents(log);
  Eval out;
  out.log = contents(log);
  if (r.exit_code == 0) out.acc = nlohmann::json::parse(r.output)["acc"].get<double>();
  return out;
}

// A model trained on x/255 and saved without metadata, as a plain PyTorch
// state dict would be: by default eval runs it as it was trained, and says so.
TEST(Defaults, AFileWithoutNormalizationRunsWithNone) {
  TempDir dir;
  const std::string trained = dir.file("trained.safetensors");
  ASSERT_EQ(
      run_command(kFedvar + " train --data " + kData + " --out " + trained +
                  " --range 0:2000 --test-range 0:100 --width 8 --epochs 3 --lr 0.05"
                  " --normalize 0,1 --device cpu 2>/dev/null")
          .exit_code,
      0);
  auto loaded = load_resnet(trained);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  const std::string plain = dir.file("plain.safetensors");
  ASSERT_TRUE(save_resnet(plain, loaded->model, std::nullopt).ok());
  ASSERT_FALSE(load_resnet(plain)->normalization.has_value());

  const Eval by_default = eval(dir, plain, "");
  const Eval none = eval(dir, plain, "--normalize 0,1");
  const Eval estimated = eval(dir, plain, "--normalize estimate");
  EXPECT_DOUBLE_EQ(by_default.acc, none.acc);
  // The wrong normalization is silent and ruinous (68.0 against 17.8 here).
  EXPECT_GT(by_default.acc, 50.0);
  EXPECT_GT(by_default.acc, estimated.acc + 20.0);
  EXPECT_NE(by_default.log.find("using none"), std::string::npos) << by_default.log;
  EXPECT_NE(estimated.log.find("estimated from the data"), std::string::npos)
      << estimated.log;
  EXPECT_EQ(eval(dir, trained, "").acc, none.acc);  // the metadata says 0,1
  EXPECT_NE(run_command(kFedvar + " eval --model " + plain + " --data " + kData +
                        " --normalize 0.5 --range 0:10 2>/dev/null")
                .exit_code,
            0);
}

// With no --threads, libtorch gets the cores the process may use (taskset
// narrows them); --threads N sets it; a negative count is a usage error.
TEST(Defaults, ThreadsFollowTheCoresTheProcessMayUse) {
  TempDir dir;
  const std::string model = dir.file("m.safetensors");
  ASSERT_EQ(
      run_command(kFedvar + " train --data " + kData + " --out " + model +
                  " --range 0:64 --test-range 0:10 --width 4 --epochs 1 --device cpu"
                  " 2>/dev/null")
          .exit_code,
      0);
  const int cores = std::stoi(run_command("nproc").output);
  const Eval by_default = eval(dir, model, "");
  EXPECT_NE(by_default.log.find(std::to_string(cores) + " CPU thread(s)"),
            std::string::npos)
      << by_default.log;
  if (run_command("command -v taskset >/dev/null").exit_code == 0) {
    auto r = run_command("taskset -c 0 " + kFedvar + " eval --model " + model +
                         " --data " + kData + " --range 0:10 2>&1 >/dev/null");
    EXPECT_NE(r.output.find("1 CPU thread(s)"), std::string::npos) << r.output;
  }
  EXPECT_NE(eval(dir, model, "--threads 3").log.find("3 CPU thread(s)"),
            std::string::npos);
  EXPECT_EQ(run_command(kFedvar + " eval --model " + model + " --data " + kData +
                        " --threads -1 2>/dev/null")
                .exit_code,
            2);
}

}  // namespace
}  // namespace fedvar
