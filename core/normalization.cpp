#include "core/normalization.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>

namespace fedvar {

Result<Normalization> Normalization::parse(const std::string& text) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size() || !std::isfinite(values.back())) {
        throw std::invalid_argument(item);
      }
    } catch (const std::exception&) {
      return Status::InvalidArgument("normalization '" + text + "': '" + item +
                                     "' is not a finite number");
    }
  }
  if (values.empty() || values.size() % 2 != 0) {
    return Status::InvalidArgument("normalization '" + text +
                                   "': expected MEAN,STD per channel "
                                   "(means first, then stds)");
  }
  Normalization n;
  const size_t c = values.size() / 2;
  n.mean.assign(values.begin(), values.begin() + c);
  n.std.assign(values.begin() + c, values.end());
  for (double s : n.std) {
    if (!(s > 0)) return Status::InvalidArgument("normalization std must be > 0");
  }
  return n;
}

std::string Normalization::to_string() const {
  std::ostringstream out;
  out.precision(6);
  for (size_t i = 0; i < mean.size(); ++i) out << (i ? "," : "") << mean[i];
  for (double s : std) out << "," << s;
  return out.str();
}

Normalization Normalization::none(int64_t channels) {
  const auto n = static_cast<size_t>(std::max<int64_t>(channels, 0));
  return Normalization{std::vector<double>(n, 0.0), std::vector<double>(n, 1.0)};
}

Normalization Normalization::estimate(const Dataset& data) {
  Normalization n;
  torch::NoGradGuard no_grad;
  auto x = data.images.to(torch::kFloat).div_(255.0);
  for (int64_t c = 0; c < x.size(1); ++c) {
    auto channel = x.select(1, c);
    n.mean.push_back(channel.mean().item<double>());
    n.std.push_back(std::max(channel.std().item<double>(), 1e-6));
  }
  return n;
}

Status Normalization::check_channels(int64_t channels) const {
  if (static_cast<int64_t>(mean.size()) != channels) {
    return Status::InvalidArgument("normalization has " + std::to_string(mean.size()) +
                                   " channel(s) but the images have " +
                                   std::to_string(channels));
  }
  return Status::Ok();
}

torch::Tensor to_unit_float(const torch::Tensor& images, const torch::Device& device) {
  return images.to(device, torch::kFloat).div_(255.0);
}

torch::Tensor normalize(const torch::Tensor& unit_images, const Normalization& n) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(unit_images.device());
  auto shape = std::vector<int64_t>{1, static_cast<int64_t>(n.mean.size()), 1, 1};
  auto mean =
      torch::tensor(std::vector<float>(n.mean.begin(), n.mean.end()), opts).view(shape);
  auto std =
      torch::tensor(std::vector<float>(n.std.begin(), n.std.end()), opts).view(shape);
  return (unit_images - mean) / std;
}

}  // namespace fedvar
