// FedAvg (McMahan et al., AISTATS 2017): the new global model is the mean of
// the clients' state dicts weighted by their sample counts. Updates are folded
// into a running sum as they arrive, so memory holds one model-sized sum
// however many clients answer a round. The math only; no sockets here.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>

#include "core/state_dict.h"
#include "core/status.h"

namespace fedvar::aggregator {

class FedAvg {
 public:
  // `reference` (the round's global model) fixes the names, dtypes and
  // shapes every update must have.
  explicit FedAvg(const StateDict& reference);

  // Adds `update` with weight `num_samples`. A missing, extra or mis-shaped
  // tensor, a dtype change or num_samples <= 0 is kInvalidArgument, and
  // nothing is added. Weights are summed in float64, so no count overflows;
  // bounding what a client may claim is the server's job (--max-samples).
  Status add(const StateDict& update, int64_t num_samples);

  int64_t updates() const { return updates_; }
  double total_weight() const { return total_weight_; }

  // The weighted mean, each tensor in its reference dtype on CPU. Floating
  // tensors (weights, BN running mean/var) are summed in float32 (float64
  // ones in float64); integer buffers (BN num_batches_tracked) get the
  // weighted mean rounded to the nearest integer. kFailedPrecondition when no
  // update was added.
  Result<StateDict> result() const;

 private:
  StateDict reference_;
  std::map<std::string, torch::Tensor> sums_;  // sum of weight * tensor
  int64_t updates_ = 0;
  double total_weight_ = 0;
};

}  // namespace fedvar::aggregator
