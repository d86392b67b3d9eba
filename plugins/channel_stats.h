// Per-channel statistics of conv outputs on clean data: what VarDefense
// (variance) and fine-pruning (mean activation) rank neurons by.
//
// A neuron is an output channel of a conv layer; its output is
// relu(bn(conv(x))), the activation the channel passes on. (For a block's
// second conv, ReLU in the network comes after the residual add; we take the
// channel's own activation so that the score is the conv's, not the skip's.)
#pragma once

#include <torch/types.h>

#include <vector>

#include "core/dataset.h"
#include "core/normalization.h"
#include "core/resnet.h"

namespace fedvar::plugins {

// Variance of each channel of activations [B, C, H, W] over (B, H, W),
// population form (divide by count). Returns [C].
torch::Tensor channel_variance(const torch::Tensor& activations);

// Exponential moving average of per-batch statistics (paper 3.6.3):
// v <- momentum * v + (1 - momentum) * batch_value; the first batch sets v.
class MomentumAverage {
 public:
  explicit MomentumAverage(double momentum) : momentum_(momentum) {}
  void update(const torch::Tensor& batch_value);
  const torch::Tensor& value() const { return value_; }

 private:
  double momentum_;
  torch::Tensor value_;
};

enum class ChannelStat {
  kVariance,        // of relu(bn(conv(x))): the paper's neuron output
  kMeanActivation,  // of relu(bn(conv(x))): fine-pruning's score
  // Of the standardized conv output (conv(x) - running_mean) / sqrt(running_var),
  // i.e. bn's output before its affine and ReLU: the clean variance as a share
  // of the spread BN recorded in training (VarDefense's standardize=1).
  kStandardizedVariance,
};

struct StatOptions {
  ChannelStat stat = ChannelStat::kVariance;
  double momentum = 0.9;     // 0 = last batch only
  int64_t batch_size = 128;  // the paper's batch size
};

// Feeds `data` through `model` (eval mode, no grad) in order and returns, for
// each conv of model->conv_layers() named by `conv_indices`, the momentum
// average of the statistic per channel ([C] on CPU).
std::vector<torch::Tensor> measure_channels(ResNet18& model, const Dataset& data,
                                            const Normalization& normalization,
                                            const torch::Device& device,
                                            const std::vector<size_t>& conv_indices,
                                            const StatOptions& options);

}  // namespace fedvar::plugins
