#include "plugins/batchnorm_stats.h"

#include <torch/torch.h>

#include "core/torch_compat.h"

namespace fedvar::plugins {

BatchNormStats batchnorm_stats(ResNet18& model) {
  BatchNormStats stats;
  for (auto& layer : model->conv_layers()) {
    stats.mean.push_back(layer.bn->running_mean.clone());
    stats.var.push_back(layer.bn->running_var.clone());
  }
  return stats;
}

void set_batchnorm_stats(ResNet18& model, const BatchNormStats& stats) {
  torch::NoGradGuard no_grad;
  auto layers = model->conv_layers();
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i].bn->running_mean.copy_(stats.mean[i]);
    layers[i].bn->running_var.copy_(stats.var[i]);
  }
}

void recalibrate_batchnorm(ResNet18& model, const Dataset& data,
                           const DefenseContext& ctx, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  auto layers = model->conv_layers();
  std::vector<TorchOptional<double>> momenta;
  for (auto& layer : layers) {
    momenta.push_back(layer.bn->options.momentum());
    layer.bn->reset_running_stats();
    layer.bn->options.momentum(kTorchNullopt);  // cumulative average over the pass
  }
  model->train();
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const int64_t end = std::min(begin + batch_size, data.size());
    model->forward(normalize(to_unit_float(data.images.slice(0, begin, end), ctx.device),
                             ctx.normalization));
  }
  for (size_t i = 0; i < layers.size(); ++i) layers[i].bn->options.momentum(momenta[i]);
  model->eval();
}

}  // namespace fedvar::plugins
