#include "plugins/channel_mask.h"

#include <torch/torch.h>

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
