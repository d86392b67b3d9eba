// A round's state dicts as the rows of one matrix, and back: the robust rules
// (robust_rules.h) work on [n, d]. A row is a client's delta from the global
// model over every floating tensor (weights and BatchNorm running
// statistics), in the global state dict's name order; integer buffers
// (BatchNorm's num_batches_tracked) are not in the rows.
#pragma once

#include <torch/types.h>

#include <vector>

#include "aggregator/strategy.h"
#include "core/state_dict.h"
#include "core/status.h"

namespace fedvar::aggregator {

// d: the number of elements of the global model's floating tensors.
int64_t flat_size(const StateDict& global);

// Writes update - global over the floating tensors into `row` ([d] float32,
// contiguous), without temporaries when both are float32.
Status write_delta(torch::Tensor row, const StateDict& update, const StateDict& global);

// [n, d] float32: update_i - global over the floating tensors. When every
// update carries its `delta` and they are consecutive rows of one matrix (a
// collecting round's), a view of that matrix; else a new tensor.
Result<torch::Tensor> stack_deltas(const std::vector<ClientUpdate>& updates,
                                   const StateDict& global);

// global + delta ([d]) as a state dict. Integer buffers get the mean of the
// updates' weighted by num_samples x weight, rounded (as FedAvg).
Result<StateDict> apply_delta(const StateDict& global, const torch::Tensor& delta,
                              const std::vector<ClientUpdate>& updates);

// Makes row i of `deltas` update i's delta (a filter that clips or rescales):
// written into its `delta` in place when it has one, else into its state as
// global + row.
Status set_deltas(std::vector<ClientUpdate>& updates, const torch::Tensor& deltas,
                  const StateDict& global);

// The updates' aggregation weights, [n] float64: num_samples x weight.
torch::Tensor sample_weights(const std::vector<ClientUpdate>& updates);

}  // namespace fedvar::aggregator
