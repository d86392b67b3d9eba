#include "core/device.h"

#include <torch/cuda.h>

#include <cctype>

namespace fedvar {
namespace {

// The N of "cuda:N" (digits only, at most 4), or -1 for "cuda", or -2 when
// the text after "cuda" is anything else.
int cuda_index(const std::string& spec) {
  if (spec == "cuda") return -1;
  const std::string digits = spec.substr(5);
  if (spec.compare(0, 5, "cuda:") != 0 || digits.empty() || digits.size() > 4) return -2;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -2;
  }
  return std::stoi(digits);
}

}  // namespace

Result<torch::Device> resolve_device(const std::string& spec) {
  if (spec == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA)
                                       : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  const int index = spec.rfind("cuda", 0) == 0 ? cuda_index(spec) : -2;
  if (index == -2) {
    return Status::InvalidArgument("unknown device '" + spec +
                                   "' (expected auto, cpu, cuda or cuda:N)");
  }
  if (!torch::cuda::is_available()) {
    return Status::Unavailable("device '" + spec +
                               "' requested but no CUDA device is available "
                               "(this libtorch build or machine has none)");
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    return Status::InvalidArgument("device '" + spec + "': this machine has " +
                                   std::to_string(count) + " CUDA device(s)");
  }
  return index < 0 ? torch::Device(torch::kCUDA)
                   : torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace fedvar
