#include "aggregator/fedavg.h"

#include <ATen/ATen.h>

namespace fedvar::aggregator {
namespace {

// The dtype a tensor's running sum is kept in: float32 for float32 and
// narrower floats (as Flower's numpy sums float32 layers), float64 for
// float64 and for integer buffers (rounded at the end).
torch::ScalarType sum_dtype(torch::ScalarType dtype) {
  if (at::isFloatingType(dtype) && dtype != torch::kFloat64) return torch::kFloat32;
  return torch::kFloat64;
}

}  // namespace

FedAvg::FedAvg(const StateDict& reference) : reference_(reference) {
  for (const auto& [name, t] : reference_) {
    sums_[name] = torch::zeros(t.sizes(), torch::dtype(sum_dtype(t.scalar_type())));
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
      // One pass: reads the update and the sum once, writes the sum once.
      sum.add_(update.at(name).to(torch::kCPU, sum.scalar_type()), weight);
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
  StateDict out;
  try {
    for (const auto& [name, sum] : sums_) {
      const auto dtype = reference_.at(name).scalar_type();
      torch::Tensor mean = sum / total_weight_;
      out[name] = (at::isFloatingType(dtype) ? mean : mean.round()).to(dtype);
    }
  } catch (const std::exception& e) {
    return status_from_exception("fedavg", e);
  }
  return out;
}

}  // namespace fedvar::aggregator
