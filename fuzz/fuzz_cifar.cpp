// Fuzzes read_cifar_files (core/cifar.h): the first byte chooses the variant
// (even: CIFAR-10, odd: CIFAR-100), the rest is the file. What reads is a
// [N, 3, 32, 32] uint8 set with one label in range per image.
#include <torch/types.h>

#include <cstdint>

#include "core/cifar.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const fedvar::fuzz::ScratchFile input("cifar");
  const auto variant =
      data[0] % 2 == 0 ? fedvar::CifarVariant::kCifar10 : fedvar::CifarVariant::kCifar100;
  if (!input.write(data + 1, size - 1)) return 0;
  fedvar::Result<fedvar::Dataset> set = fedvar::read_cifar_files({input.path()}, variant);
  if (!set.ok()) return 0;
  const torch::Tensor& images = set->images;
  const torch::Tensor& labels = set->labels;
  using fedvar::fuzz::check;
  check(images.dim() == 4 && images.size(1) == 3 && images.size(2) == 32 &&
            images.size(3) == 32 && images.scalar_type() == torch::kUInt8,
        "CIFAR images are not uint8 [N, 3, 32, 32]");
  check(labels.dim() == 1 && labels.size(0) == images.size(0), "one label per image");
  check(labels.numel() == 0 || (labels.min().item<int64_t>() >= 0 &&
                                labels.max().item<int64_t>() < set->num_classes),
        "a CIFAR label is out of range");
  return 0;
}
