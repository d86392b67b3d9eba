// Purified (pruned) output channels of conv layers. A purified channel has
// its conv filter and its BatchNorm's weight and bias set to zero, so that its
// output is exactly 0 and the file stays a plain ResNet18 that PyTorch loads
// with strict=True. apply() re-zeroes them after every optimizer step, since
// the BN weight still receives gradient.
#pragma once

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/resnet.h"

namespace fedvar::plugins {

class ChannelMask {
 public:
  // Zeroes `channels` of `layer` now and on every apply().
  void purify(const ConvBn& layer, const std::vector<int64_t>& channels);
  void apply();
  bool is_purified(const std::string& layer, int64_t channel) const;
  size_t count(const std::string& layer) const;
  size_t total() const;
  // {"layer4.1.conv2": [3, 17, ...], ...}
  nlohmann::json to_json() const;

 private:
  struct Entry {
    ConvBn layer;
    std::set<int64_t> channels;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace fedvar::plugins
