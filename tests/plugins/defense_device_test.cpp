// Every defense works on the device it is given: after each of its phases
// (each progress line it prints) and at the end, every parameter and buffer
// of the model is on ctx.device, and the run succeeds. On the CPU everywhere;
// on "cuda" too where libtorch sees a GPU (deploy/gpu-check.sh runs this
// test there), which is where a tensor made without the model's device
// would fail. Tiny model and options: a few seconds on 2 cores.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <string>
#include <vector>

#include "core/resnet.h"
#include "plugins/registry.h"
#include "tests/support/random_context.h"

namespace fedvar::plugins {
namespace {

std::vector<torch::Device> devices_here() {
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  return devices;
}

// The names of the model's tensors that are not on `device`.
std::vector<std::string> misplaced(ResNet18& model, const torch::Device& device) {
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) {
    if (p.value().device() != device) names.push_back(p.key());
  }
  for (const auto& b : model->named_buffers()) {
    if (b.value().device() != device) names.push_back(b.key());
  }
  return names;
}

// Each defense (and a chain) with options that make every phase short.
const std::vector<std::string> kSpecs = {
    "vardefense:preset=federated,layers=2,share_steps=2,final_epochs=1,batch_size=32",
    "vardefense:acc_budget=100,layers=1,share_steps=1,final_epochs=1,batch_size=32",
    "vardefense:preset=one-shot,layers=1",
    "fine-tuning:epochs=1,batch_size=32,augment=1,recalibrate=1",
    "fine-pruning:epochs=1,step_fraction=0.5",
    "nad:teacher_epochs=1,epochs=1",
    "fst:epochs=1,batch_size=32",
    "anp:iterations=3,batch_size=32,threshold_step=0.3",
    "sau:epochs=1,batch_size=32,pgd_steps=1",
    "i-bau:rounds=1,k=1,batch_size=32",
    "fine-pruning:epochs=0,step_fraction=0.5+fst:epochs=1",
};

TEST(DefenseDevice, EveryPhaseKeepsTheModelOnTheGivenDevice) {
  torch::manual_seed(11);
  const auto random = testing::random_context(96);  // no quality is asserted here
  for (const auto& device : devices_here()) {
    for (const auto& spec : kSpecs) {
      SCOPED_TRACE(spec + " on " + device.str());
      torch::manual_seed(5);
      ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, /*width=*/4});
      auto defense = make_defense(spec);
      ASSERT_TRUE(defense.ok()) << defense.status().message();

      DefenseContext ctx = random;
      ctx.device = device;
      int phases = 0;
      std::vector<std::string> wrong;
      ctx.progress = [&](const std::string& line) {
        ++phases;
        for (const auto& name : misplaced(model, device))
          wrong.push_back(name + " after " + line);
      };
      auto report = (*defense)->apply(model, ctx);
      ASSERT_TRUE(report.ok()) << report.status().message();
      EXPECT_GT(phases, 0) << "no progress line: the check never ran mid-defense";
      EXPECT_TRUE(wrong.empty())
          << wrong.size() << " misplaced, first: " << wrong.front();
      EXPECT_TRUE(misplaced(model, device).empty()) << "at the end";
    }
  }
}

}  // namespace
}  // namespace fedvar::plugins
