// The two numbers every backdoor paper reports.
//   ACC: share of clean test images classified correctly.
//   ASR: share of test images whose true label is not the target that the
//        model classifies as the target once the trigger is stamped.
// And ASR's reference: the same share without the trigger (clean images the
// model sends to the target anyway). A defense cannot be asked to push ASR
// far below it; a backdoor-free model's ASR sits near it.
#pragma once

#include <torch/types.h>

#include <cstdint>

#include "core/dataset.h"
#include "core/normalization.h"
#include "core/resnet.h"
#include "core/status.h"
#include "core/trigger.h"

namespace fedvar {

struct EvalOptions {
  Normalization normalization;
  torch::Device device = torch::kCPU;
  int64_t batch_size = 500;
  uint64_t seed = 1;  // random trigger positions
};

// Percent (0..100). The model is put in eval mode (and left there). A
// libtorch error (a wrong input size, out of memory) is kInternal with its
// message.
Result<double> accuracy_percent(ResNet18& model, const Dataset& data,
                                const EvalOptions& opts);
Result<double> attack_success_percent(ResNet18& model, const Dataset& data,
                                      const TriggerSpec& trigger, int64_t target,
                                      const EvalOptions& opts);
Result<double> clean_to_target_percent(ResNet18& model, const Dataset& data,
                                       int64_t target, const EvalOptions& opts);

// Predicted class of every image, with `trigger` stamped when non-null.
Result<torch::Tensor> predict(ResNet18& model, const Dataset& data,
                              const EvalOptions& opts,
                              const TriggerSpec* trigger = nullptr);

}  // namespace fedvar
