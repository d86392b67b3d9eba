#include "plugins/channel_mask.h"

#include <torch/torch.h>

#include <cmath>

namespace fedvar::plugins {
namespace {

void zero_channels(const ConvBn& layer, const std::set<int64_t>& channels) {
  if (channels.empty()) return;
  torch::NoGradGuard no_grad;
  auto index = torch::tensor(
      std::vector<int64_t>(channels.begin(), channels.end()),
      torch::TensorOptions(torch::kLong).device(layer.conv->weight.device()));
  layer.conv->weight.index_fill_(0, index, 0.0);
  layer.bn->weight.index_fill_(0, index, 0.0);
  layer.bn->bias.index_fill_(0, index, 0.0);
}

// The only conv that reads a block's conv1 output: the same block's conv2
// ("layer3.1.conv1" -> "layer3.1.conv2"); nullptr for any other conv.
const ConvBn* block_reader(const std::vector<ConvBn>& convs, const std::string& name) {
  const std::string suffix = ".conv1";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return nullptr;
  }
  const std::string reader = name.substr(0, name.size() - suffix.size()) + ".conv2";
  for (const auto& c : convs)
    if (c.name == reader) return &c;
  return nullptr;
}

}  // namespace

void ChannelMask::purify(const ConvBn& layer, const std::vector<int64_t>& channels) {
  auto& entry = entries_.try_emplace(layer.name, Entry{layer, {}}).first->second;
  entry.layer = layer;
  entry.channels.insert(channels.begin(), channels.end());
  zero_channels(entry.layer, entry.channels);
}

void ChannelMask::apply() {
  for (auto& [name, entry] : entries_) zero_channels(entry.layer, entry.channels);
}

void ChannelMask::revive(const std::vector<ConvBn>& convs, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& [name, entry] : entries_) {
    auto& weight = entry.layer.conv->weight;
    const double bound = 1.0 / std::sqrt(static_cast<double>(weight[0].numel()));
    for (int64_t c : entry.channels) {  // kaiming_uniform_(a = sqrt(5)): +-1/sqrt(fan_in)
      weight[c].copy_(torch::empty(weight[c].sizes(), torch::kFloat)
                          .uniform_(-bound, bound, gen)
                          .to(weight.options()));
      entry.layer.bn->running_mean[c].fill_(0.0);
      entry.layer.bn->running_var[c].fill_(1.0);
    }
  }
  // After all fresh filters, so that no revived conv2 filter refills a column.
  for (auto& [name, entry] : entries_) {
    const ConvBn* reader = block_reader(convs, name);
    if (reader == nullptr) continue;
    for (int64_t c : entry.channels) {
      reader->conv->weight.select(1, c).zero_();
      entry.layer.bn->weight[c].fill_(1.0);
    }
  }
}

bool ChannelMask::is_purified(const std::string& layer, int64_t channel) const {
  auto it = entries_.find(layer);
  return it != entries_.end() && it->second.channels.count(channel) > 0;
}

size_t ChannelMask::count(const std::string& layer) const {
  auto it = entries_.find(layer);
  return it == entries_.end() ? 0 : it->second.channels.size();
}

size_t ChannelMask::total() const {
  size_t n = 0;
  for (const auto& [name, entry] : entries_) n += entry.channels.size();
  return n;
}

nlohmann::json ChannelMask::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, entry] : entries_) {
    j[name] = std::vector<int64_t>(entry.channels.begin(), entry.channels.end());
  }
  return j;
}

}  // namespace fedvar::plugins
