#include "core/augment.h"

#include <torch/torch.h>

namespace fedvar {

torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& gen) {
  constexpr int64_t kPad = 2;
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2),
                w = images.size(3);
  auto padded = torch::constant_pad_nd(images, {kPad, kPad, kPad, kPad}, 0);
  auto shifts = torch::randint(0, 2 * kPad + 1, {n, 2}, gen, torch::kLong);
  auto flips = torch::rand({n}, gen) < 0.5;
  // Image i's crop is rows shift[i][0] + [0, h) and columns shift[i][1] +
  // [0, w) of its padded copy, the columns reversed where it is flipped: two
  // gathers for the whole batch, on the images' device.
  const auto rows = shifts.select(1, 0).unsqueeze(1) + torch::arange(h, torch::kLong);
  auto cols = shifts.select(1, 1).unsqueeze(1) + torch::arange(w, torch::kLong);
  cols = torch::where(flips.unsqueeze(1), cols.flip({1}), cols);
  const auto device = images.device();
  auto by_row = padded.gather(
      2, rows.to(device).view({n, 1, h, 1}).expand({n, c, h, w + 2 * kPad}));
  return by_row.gather(3, cols.to(device).view({n, 1, 1, w}).expand({n, c, h, w}));
}

BatchTransform augment_transform() {
  return [](torch::Tensor& x, torch::Tensor&, at::Generator& gen) {
    x = augment_batch(x, gen);
    return x.size(0);
  };
}

}  // namespace fedvar
