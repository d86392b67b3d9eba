// Augmentation of a training batch: each image shifted by up to 2 pixels
// (zero padding, cropped back to its size) and flipped left-right with
// probability 1/2, as BackdoorBench's fine-tuning augments CIFAR (4 pixels
// of 32). Fine-tuning's augment=1.
#pragma once

#include <torch/types.h>

#include "core/trainer.h"

namespace fedvar {

// The transform of unit-float images (N, C, H, W), drawn from `gen`.
torch::Tensor augment_batch(const torch::Tensor& images, at::Generator& gen);

// augment_batch as a training-loop transform (labels unchanged).
BatchTransform augment_transform();

}  // namespace fedvar
