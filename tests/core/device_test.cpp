// Device strings: what each resolves to, the CPU fallback of "auto", and
// clear errors for text that names no device.
#include "core/device.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

namespace fedvar {
namespace {

TEST(Device, CpuIsCpuAndAutoFallsBackToIt) {
  auto cpu = resolve_device("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_TRUE(cpu->is_cpu());
  auto any = resolve_device("auto");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->is_cuda(), torch::cuda::is_available());
}

TEST(Device, CudaIsUnavailableWithoutADeviceAndBoundedWithOne) {
  for (const char* spec : {"cuda", "cuda:0"}) {
    auto device = resolve_device(spec);
    if (torch::cuda::is_available()) {
      ASSERT_TRUE(device.ok()) << spec;
      EXPECT_TRUE(device->is_cuda());
    } else {
      ASSERT_FALSE(device.ok()) << spec;
      EXPECT_EQ(device.status().code(), Code::kUnavailable);
      EXPECT_NE(device.status().message().find("no CUDA device"), std::string::npos);
    }
  }
  if (torch::cuda::is_available()) {
    auto beyond = resolve_device("cuda:" + std::to_string(torch::cuda::device_count()));
    ASSERT_FALSE(beyond.ok());
    EXPECT_EQ(beyond.status().code(), Code::kInvalidArgument);
  }
}

TEST(Device, TextThatNamesNoDeviceIsInvalidWhateverTheMachine) {
  for (const char* spec : {"", "gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:0:1",
                           "cudax", "cuda:99999"}) {
    auto device = resolve_device(spec);
    ASSERT_FALSE(device.ok()) << spec;
    EXPECT_EQ(device.status().code(), Code::kInvalidArgument) << spec;
    EXPECT_NE(device.status().message().find("unknown device"), std::string::npos)
        << spec;
    EXPECT_EQ(device.status().message().find('\n'), std::string::npos) << spec;
  }
}

}  // namespace
}  // namespace fedvar
