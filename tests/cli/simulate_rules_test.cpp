// The server's rules in a real federation (`fedvar simulate`: server and
// client processes on loopback): one of five clients replaces the model
// (--scale 10). Plain FedAvg lets its update through, so the global model
// lands far from the one an attack-free round makes; Krum, the median, FLAME and norm
// clipping each drop or neutralise it, and the metrics line says which
// client a before-rule excluded or clipped, with its detection counts.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/file_io.h"
#include "core/model_io.h"
#include "core/state_dict.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using testing::kData;
using testing::kFedvar;
using testing::run_command;
using testing::TempDir;

StateDict final_state(const TempDir& dir, const std::string& run) {
  auto model = load_resnet(dir.file("sim/" + run + ".safetensors"));
  EXPECT_TRUE(model.ok()) << run << ": " << model.status().message();
  return model.ok() ? resnet_state(model->model).tensors : StateDict{};
}

// The L2 distance between two models' parameters.
double distance(const StateDict& a, const StateDict& b) {
  double squares = 0;
  for (const auto& [name, t] : a) {
    if (!at::isFloatingType(t.scalar_type()) || is_buffer_name(name)) continue;
    squares += (t - b.at(name)).to(torch::kFloat64).square().sum().item<double>();
  }
  return std::sqrt(squares);
}

nlohmann::json last_line(const TempDir& dir, const std::string& run) {
  std::ifstream in(dir.file("sim/" + run + ".jsonl"));
  std::string line, last;
  while (std::getline(in, line)) last = line;
  return last.empty() ? nlohmann::json() : nlohmann::json::parse(last);
}

TEST(SimulateRules, RobustRulesNeutraliseAModelReplacementAttacker) {
  TempDir dir;
  const std::string init = dir.file("init.safetensors");
  ASSERT_EQ(run_command(kFedvar + " train --data " + kData + " --out " + init +
                        " --range 0:256 --test-range 0:50 --width 4 --epochs 1"
                        " --device cpu 2>/dev/null")
                .exit_code,
            0);
  const std::string base =
      kFedvar + " simulate --data " + kData + " --out " + dir.file("sim") + " --init " +
      init +
      " --clients 5 --attackers 1 --attack patch:size=3 --scale 10 --rounds 1"
      " --partition iid --pool-size 500 --clean-size 100 --test-size 100 --batch-size 32"
      " --after none ";
  struct Run {
    std::string flags, name;
  };
  const std::vector<Run> runs = {{"--compare --clean-baseline", "no-defense"},
                                 {"--aggregate krum:f=1", "krum-f1"},
                                 {"--aggregate median", "median"},
                                 {"--before flame", "flame"},
                                 {"--before norm-clip:bound=0.5", "norm-clip-bound0.5"}};
  for (const auto& r : runs) {
    const auto result = run_command(base + r.flags + " 2>" + dir.file("err"));
    ASSERT_EQ(result.exit_code, 0)
        << r.name << ": " << read_file(dir.file("err")).value();
  }
  // Dropped: a before-rule excluded the attacker. Neutralised: the round's
  // model stays near the one the same round makes with no attacker at all,
  // where FedAvg's is pulled far off.
  const StateDict clean = final_state(dir, "no-attack");
  const double fedavg = distance(final_state(dir, "no-defense"), clean);
  ASSERT_GT(fedavg, 0);
  for (const auto& r : runs) {
    if (r.name == "no-defense") continue;
    const double robust = distance(final_state(dir, r.name), clean);
    const bool dropped = last_line(dir, r.name)["detection"]["tp"] == 1;
    std::cerr << r.name << ": " << robust << " from the attack-free model (FedAvg "
              << fedavg << ")" << (dropped ? ", attacker excluded" : "") << "\n";
    EXPECT_TRUE(dropped || robust < 0.5 * fedavg) << r.name;
  }
  const auto flame = last_line(dir, "flame");
  ASSERT_TRUE(flame.contains("detection")) << flame.dump();
  EXPECT_EQ(flame["detection"]["tp"], 1) << flame.dump();
  EXPECT_EQ(flame["detection"]["fn"], 0) << flame.dump();
  bool clipped = false;
  const auto clip = last_line(dir, "norm-clip-bound0.5");
  for (const auto& v : clip["before"]) {
    clipped |= v["client_id"] == "attacker-0" && v["action"] == "clipped";
  }
  EXPECT_TRUE(clipped) << clip.dump();
  const auto plain = last_line(dir, "no-defense");
  EXPECT_EQ(plain["detection"]["fn"], 1);  // FedAvg flags nobody
  EXPECT_TRUE(plain["before"].empty());
}

}  // namespace
}  // namespace fedvar
