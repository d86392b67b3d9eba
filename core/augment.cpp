#include "core/augment.h"

#include <torch/torch.h>

namespace fedvar {

torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& gen) {
  constexpr int64_t kPad = 2;
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  auto padded = torch::constant_pad_nd(images, {kPad, kPad, kPad, kPad}, 0);
  auto shifts = torch::randint(0, 2 * kPad + 1, {n, 2}, gen, torch::kLong);
  auto flips = torch::rand({n}, gen) < 0.5;
  auto shift = shifts.accessor<int64_t, 2>();
  auto flip = flips.accessor<bool, 1>();
  std::vector<torch::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto crop = padded[i]
                    .slice(1, shift[i][0], shift[i][0] + h)
                    .slice(2, shift[i][1], shift[i][1] + w);
    out.push_back(flip[i] ? crop.flip({2}) : crop);
  }
  return torch::stack(out);
}

BatchTransform augment_transform() {
  return [](torch::Tensor& x, torch::Tensor&, at::Generator& gen) {
    x = augment_batch(x, gen);
    return x.size(0);
  };
}

}  // namespace fedvar
