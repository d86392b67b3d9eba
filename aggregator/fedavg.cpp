#include "aggregator/fedavg.h"

#include <ATen/ATen.h>

namespace fedvar::aggregator {
FedAvg::FedAvg(const StateDict& reference) : reference_(reference) {
  for (const auto& [name, t] : reference_) {
    sums_[name] = torch::zeros(t.sizes(), torch::dtype(torch::kFloat64));
  }
}

Status FedAvg::add(const StateDict& update, int64_t num_samples) {
  if (num_samples <= 0) {
    return Status::InvalidArgument("an update's sample count must be positive, got " +
                                   std::to_string(num_samples));
  }
  FEDVAR_RETURN_IF_ERROR(check_same_layout(update, reference_));
  const double weight = static_cast<double>(num_samples);
  torch::NoGradGuard no_grad;
  try {
    for (auto& [name, sum] : sums_) {
      sum.add_(update.at(name).to(torch::kCPU), weight);  // promoted in place, no copy
    }
  } catch (const std::exception& e) {
    return status_from_exception("fedavg", e);
  }
  ++updates_;
  total_weight_ += weight;
  return Status::Ok();
}

Result<StateDict> FedAvg::result() const {
  if (updates_ == 0) return Status::FailedPrecondition("no update to average");
  StateDict mean;
  const double total = total_weight_;
  try {
    for (const auto& [name, sum] : sums_) {
      torch::Tensor m = sum / total;
      const auto dtype = reference_.at(name).scalar_type();
      if (!at::isFloatingType(dtype)) m = m.round();
      mean[name] = m.to(dtype);
    }
  } catch (const std::exception& e) {
    return status_from_exception("fedavg", e);
  }
  return mean;
}

}  // namespace fedvar::aggregator
