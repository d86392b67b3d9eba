#include "plugins/channel_stats.h"

#include <torch/torch.h>

namespace fedvar::plugins {

torch::Tensor channel_variance(const torch::Tensor& activations) {
  return activations.transpose(0, 1).flatten(1).var(/*dim=*/1, /*unbiased=*/false);
}

void MomentumAverage::update(const torch::Tensor& batch_value) {
  if (!value_.defined()) {
    value_ = batch_value.detach().clone();
  } else {
    value_.mul_(momentum_).add_(batch_value.detach(), 1.0 - momentum_);
  }
}

std::vector<torch::Tensor> measure_channels(ResNet18& model, const Dataset& data,
                                            const Normalization& normalization,
                                            const torch::Device& device,
                                            const std::vector<size_t>& conv_indices,
                                            const StatOptions& options) {
  torch::NoGradGuard no_grad;
  model->eval();
  model->to(device);
  std::vector<MomentumAverage> averages(conv_indices.size(),
                                        MomentumAverage(options.momentum));
  const auto convs = model->conv_layers();
  ConvObserver observer = [&](size_t conv, const torch::Tensor& bn_out) {
    for (size_t k = 0; k < conv_indices.size(); ++k) {
      if (conv_indices[k] != conv) continue;
      switch (options.stat) {
        case ChannelStat::kVariance:
          averages[k].update(channel_variance(torch::relu(bn_out)));
          break;
        case ChannelStat::kMeanActivation:
          averages[k].update(torch::relu(bn_out).mean(std::vector<int64_t>{0, 2, 3}));
          break;
        case ChannelStat::kStandardizedVariance: {
          // Undo bn's affine: var(gamma * z + beta) = gamma^2 var(z). A channel
          // with gamma 0 passes nothing on (purified): its variance is 0.
          const auto& bn = convs[conv].bn;
          auto gamma2 = bn->weight.detach().square();
          auto var = channel_variance(bn_out) / gamma2.clamp_min(1e-30);
          averages[k].update(torch::where(gamma2 > 0, var, torch::zeros_like(var)));
          break;
        }
      }
    }
  };
  for (int64_t begin = 0; begin < data.size(); begin += options.batch_size) {
    const int64_t end = std::min(begin + options.batch_size, data.size());
    auto x =
        normalize(to_unit_float(data.images.slice(0, begin, end), device), normalization);
    model->forward(x, &observer);
  }
  std::vector<torch::Tensor> out;
  for (auto& a : averages) {
    out.push_back(a.value().defined() ? a.value().to(torch::kCPU) : torch::Tensor());
  }
  return out;
}

}  // namespace fedvar::plugins
