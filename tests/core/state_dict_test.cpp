#include "core/state_dict.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace fedvar {
namespace {

TEST(StateDict, BuffersAreNamedAsTorchvisionNamesThem) {
  EXPECT_TRUE(is_buffer_name("layer1.0.bn1.running_mean"));
  EXPECT_TRUE(is_buffer_name("bn1.running_var"));
  EXPECT_TRUE(is_buffer_name("bn1.num_batches_tracked"));
  EXPECT_FALSE(is_buffer_name("bn1.weight"));
  EXPECT_FALSE(is_buffer_name("conv1.weight"));
  EXPECT_FALSE(is_buffer_name("var"));
}

// A model-replacement update that scaled its BatchNorm statistics sends a
// negative running variance: refused, naming the tensor.
TEST(StateDict, NegativeRunningVarianceIsNotAVariance) {
  StateDict state = {{"bn1.running_var", torch::tensor({1.0f, 0.0f})},
                     {"bn1.running_mean", torch::tensor({-3.0f, 2.0f})}};
  EXPECT_TRUE(check_batchnorm_statistics(state).ok());
  state["bn1.running_var"] = torch::tensor({1.0f, -0.5f});
  const Status bad = check_batchnorm_statistics(state);
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("bn1.running_var"), std::string::npos) << bad.message();
}

}  // namespace
}  // namespace fedvar
