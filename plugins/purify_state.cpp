#include "plugins/purify_state.h"

#include <torch/torch.h>

#include "core/model_io.h"

namespace fedvar::plugins {

Status check_clean_fits(const Dataset& clean, int64_t in_channels, int64_t num_classes) {
  if (clean.size() == 0) return Status::InvalidArgument("the clean set is empty");
  if (clean.channels() != in_channels) {
    return Status::InvalidArgument("the model takes " + std::to_string(in_channels) +
                                   " input channel(s), the clean images have " +
                                   std::to_string(clean.channels()));
  }
  const auto lowest = clean.labels.min().item<int64_t>();
  const auto highest = clean.labels.max().item<int64_t>();
  if (lowest < 0 || highest >= num_classes) {
    return Status::InvalidArgument(
        "clean labels must be in 0.." + std::to_string(num_classes - 1) +
        " (the model's classes), got " + std::to_string(lowest < 0 ? lowest : highest));
  }
  return Status::Ok();
}

Result<Purified> purify_state(Defense& defense, const StateDict& state,
                              const DefenseContext& ctx) {
  const TensorFile file{state, {}};
  FEDVAR_ASSIGN_OR_RETURN(auto arch, infer_resnet_options(file));
  FEDVAR_RETURN_IF_ERROR(check_clean_fits(ctx.clean, arch.in_channels, arch.num_classes));
  FEDVAR_RETURN_IF_ERROR(ctx.normalization.check_channels(arch.in_channels));
  try {
    ResNet18 model(arch);
    FEDVAR_RETURN_IF_ERROR(load_resnet_state(model, file));
    Purified out;
    FEDVAR_ASSIGN_OR_RETURN(out.report, defense.apply(model, ctx));
    model->to(torch::kCPU);
    out.state = resnet_state(model).tensors;
    return out;
  } catch (const std::exception& e) {
    return status_from_exception("purify", e);
  }
}

}  // namespace fedvar::plugins
