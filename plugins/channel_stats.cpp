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
  ConvObserver observer = [&](size_t conv, const torch::Tensor& bn_out) {
    for (size_t k = 0; k < conv_indices.size(); ++k) {
      if (conv_indices[k] != conv) continue;
      auto act = torch::relu(bn_out);
      averages[k].update(options.stat == ChannelStat::kVariance
                             ? channel_variance(act)
                             : act.mean(std::vector<int64_t>{0, 2, 3}));
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
