// Backdoor triggers: where they fit and how they are stamped (see trigger.h).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/trigger.h"
#include "core/trigger_detail.h"

namespace fedvar {
namespace {

using trigger_detail::bad_value;
using trigger_detail::dims;
using trigger_detail::kDbaGridCols;

// Bottom-right corner with a 1-pixel margin unless row/col are given.
std::pair<int64_t, int64_t> fixed_patch_origin(const TriggerSpec& s, int64_t height,
                                               int64_t width) {
  return {s.row >= 0 ? s.row : height - 1 - s.size,
          s.col >= 0 ? s.col : width - 1 - s.size};
}

// Top-left corner of DBA bar `i`.
std::pair<int64_t, int64_t> dba_bar_origin(const TriggerSpec& s, int64_t i) {
  const int64_t row_step = int64_t{s.bar_rows} + s.gap;
  const int64_t col_step = int64_t{s.bar_cols} + s.gap;
  return {s.origin_row + (i / kDbaGridCols) * row_step,
          s.origin_col + (i % kDbaGridCols) * col_step};
}

Status check_patch_fits(const TriggerSpec& s, int64_t height, int64_t width) {
  const std::string image = dims(height, width);
  const std::string size = std::to_string(s.size);
  if (s.size > height || s.size > width) {
    return bad_value("size", size, "larger than the " + image + " images");
  }
  if (s.random_position) return Status::Ok();
  const auto [row, col] = fixed_patch_origin(s, height, width);
  if (row < 0 || col < 0) {
    return bad_value("size", size,
                     "leaves no 1-pixel margin in " + image + " images; give row=/col=");
  }
  if (row + s.size > height || col + s.size > width) {
    return Status::InvalidArgument(
        "patch of size=" + size + " at row=" + std::to_string(row) +
        ",col=" + std::to_string(col) + " falls outside " + image + " images");
  }
  return Status::Ok();
}

Status check_dba_fits(const TriggerSpec& s, int64_t height, int64_t width) {
  const int64_t last = s.pieces - 1;
  const int64_t bottom = dba_bar_origin(s, last).first + s.bar_rows;
  const int64_t right =
      dba_bar_origin(s, std::min<int64_t>(last, kDbaGridCols - 1)).second + s.bar_cols;
  if (bottom > height || right > width) {
    return Status::InvalidArgument("dba layout of pieces=" + std::to_string(s.pieces) +
                                   " needs " + dims(bottom, right) +
                                   " pixels, images are " + dims(height, width));
  }
  return Status::Ok();
}

// A uniform integer in [0, n), n >= 1; the same on every platform (unlike
// std::uniform_int_distribution): rejection sampling of whole 64-bit draws.
int64_t uniform_index(std::mt19937_64& rng, int64_t n) {
  const uint64_t range = static_cast<uint64_t>(n);
  const uint64_t rem = (std::numeric_limits<uint64_t>::max() % range + 1) % range;
  while (true) {
    const uint64_t x = rng();
    if (rem == 0 || x < 0 - rem) return static_cast<int64_t>(x % range);
  }
}

// The blend pattern [C, H, W] of `seed`, as documented in trigger.h.
torch::Tensor blend_noise(uint64_t seed, int64_t channels, int64_t height,
                          int64_t width) {
  std::mt19937_64 gen(seed);
  torch::Tensor noise = torch::empty({channels, height, width}, torch::kDouble);
  double* data = noise.data_ptr<double>();
  for (int64_t i = 0; i < noise.numel(); ++i) {
    data[i] = static_cast<double>(gen() >> 11) * 0x1.0p-53;
  }
  return noise;
}

// The patch [size, size]: all 1, or a checkerboard of 1 where (r + c) is even.
torch::Tensor patch_pattern(const TriggerSpec& s) {
  if (s.pattern == PatchPattern::kSolid) return torch::ones({s.size, s.size});
  torch::Tensor idx = torch::arange(s.size, torch::kLong);
  torch::Tensor sum = idx.unsqueeze(1) + idx.unsqueeze(0);
  return (sum.remainder(2) == 0).to(torch::kFloat);
}

// Stamps `pattern` with top-left (row, col) on every image of `images`.
void stamp_patch(const torch::Tensor& images, int64_t row, int64_t col,
                 const torch::Tensor& pattern) {
  images.narrow(2, row, pattern.size(0)).narrow(3, col, pattern.size(1)).copy_(pattern);
}

void apply_patch(const TriggerSpec& s, torch::Tensor& images, std::mt19937_64& rng) {
  const int64_t height = images.size(2), width = images.size(3);
  const torch::Tensor pattern = patch_pattern(s).to(images.options());
  if (!s.random_position) {
    const auto [row, col] = fixed_patch_origin(s, height, width);
    stamp_patch(images, row, col, pattern);
    return;
  }
  for (int64_t b = 0; b < images.size(0); ++b) {
    const int64_t row = uniform_index(rng, height - s.size + 1);
    const int64_t col = uniform_index(rng, width - s.size + 1);
    stamp_patch(images.narrow(0, b, 1), row, col, pattern);
  }
}

void apply_dba(const TriggerSpec& s, torch::Tensor& images) {
  const int64_t first = s.piece < 0 ? 0 : s.piece;
  const int64_t last = s.piece < 0 ? s.pieces - 1 : s.piece;
  for (int64_t i = first; i <= last; ++i) {
    const auto [row, col] = dba_bar_origin(s, i);
    images.narrow(2, row, s.bar_rows).narrow(3, col, s.bar_cols).fill_(1.0);
  }
}

bool can_stamp(const TriggerSpec& s, const torch::Tensor& images) {
  return images.defined() && images.dim() == 4 && images.is_floating_point() &&
         check_trigger_fits(s, images.size(2), images.size(3)).ok();
}

}  // namespace

Status check_trigger_fits(const TriggerSpec& spec, int64_t height, int64_t width) {
  FEDVAR_RETURN_IF_ERROR(trigger_detail::validate(spec));
  if (height < 1 || width < 1) {
    return Status::InvalidArgument("empty images " + dims(height, width));
  }
  switch (spec.kind) {
    case TriggerKind::kPatch:
      return check_patch_fits(spec, height, width);
    case TriggerKind::kBlend:
      return Status::Ok();
    case TriggerKind::kDba:
      return check_dba_fits(spec, height, width);
  }
  return Status::Internal("unknown trigger kind");
}

void apply_trigger(const TriggerSpec& spec, torch::Tensor& images, std::mt19937_64& rng) {
  if (!can_stamp(spec, images)) return;
  torch::NoGradGuard no_grad;
  switch (spec.kind) {
    case TriggerKind::kPatch:
      apply_patch(spec, images, rng);
      break;
    case TriggerKind::kBlend: {
      torch::Tensor noise =
          blend_noise(spec.seed, images.size(1), images.size(2), images.size(3));
      images.mul_(1.0 - spec.ratio).add_(noise.to(images.options()), spec.ratio);
      break;
    }
    case TriggerKind::kDba:
      apply_dba(spec, images);
      break;
  }
}

int64_t poison_batch(const TriggerSpec& spec, torch::Tensor& images,
                     torch::Tensor& labels, int64_t target, double ratio,
                     std::mt19937_64& rng) {
  if (!can_stamp(spec, images) || !labels.defined() || labels.dim() != 1 ||
      labels.size(0) != images.size(0)) {
    return 0;
  }
  const int64_t batch = images.size(0);
  const double share = ratio > 0.0 ? std::min(ratio, 1.0) : 0.0;  // NaN -> 0
  const int64_t k = std::llround(share * static_cast<double>(batch));
  if (k == 0) return 0;
  // Partial Fisher-Yates: the first k of a uniform shuffle of 0..B-1.
  std::vector<int64_t> order(batch);
  std::iota(order.begin(), order.end(), int64_t{0});
  for (int64_t i = 0; i < k; ++i) {
    std::swap(order[i], order[i + uniform_index(rng, batch - i)]);
  }
  order.resize(k);
  torch::NoGradGuard no_grad;
  torch::Tensor chosen = torch::tensor(order, torch::kLong);
  torch::Tensor image_idx = chosen.to(images.device());
  torch::Tensor stamped = images.index_select(0, image_idx);
  apply_trigger(spec, stamped, rng);
  images.index_copy_(0, image_idx, stamped);
  labels.index_fill_(0, chosen.to(labels.device()), target);
  return k;
}

}  // namespace fedvar
