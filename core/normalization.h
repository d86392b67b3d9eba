// Per-channel input normalization, x' = (x - mean) / std, applied to images
// scaled to [0, 1]. It lives outside the model (as in torchvision), so it is
// stored beside the weights.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "core/dataset.h"
#include "core/status.h"

namespace fedvar {

struct Normalization {
  std::vector<double> mean;  // one per channel
  std::vector<double> std;

  // "0.286,0.353" (1 channel) or "m1,m2,m3,s1,s2,s3".
  static Result<Normalization> parse(const std::string& text);
  std::string to_string() const;
  // Mean 0 and std 1 on every channel: the model sees x / 255, what a model
  // trained on torchvision's ToTensor() output expects.
  static Normalization none(int64_t channels);
  // Channel mean and std of the data set's pixels (scaled to [0, 1]).
  static Normalization estimate(const Dataset& data);
  Status check_channels(int64_t channels) const;
};

// uint8 [B, C, H, W] -> float in [0, 1] on `device`.
torch::Tensor to_unit_float(const torch::Tensor& images, const torch::Device& device);
// Normalizes float [B, C, H, W] images in [0, 1] (a new tensor).
torch::Tensor normalize(const torch::Tensor& unit_images, const Normalization& n);

}  // namespace fedvar
