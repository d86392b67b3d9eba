#include "core/device.h"

#include <torch/cuda.h>

namespace fedvar {

Result<torch::Device> resolve_device(const std::string& spec) {
  if (spec == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA)
                                       : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      return Status::Unavailable("device '" + spec +
                                 "' requested but no CUDA device is available "
                                 "(this libtorch build or machine has none)");
    }
    try {
      return torch::Device(spec);
    } catch (const std::exception& e) {
      return Status::InvalidArgument("bad device '" + spec + "': " + e.what());
    }
  }
  return Status::InvalidArgument("unknown device '" + spec +
                                 "' (expected auto, cpu, cuda or cuda:N)");
}

}  // namespace fedvar
