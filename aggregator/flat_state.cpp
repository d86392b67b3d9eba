#include "aggregator/flat_state.h"

#include <torch/torch.h>

#include <cmath>

namespace fedvar::aggregator {
namespace {

bool floating(const torch::Tensor& t) { return at::isFloatingType(t.scalar_type()); }

int64_t flat_size(const StateDict& global) {
  int64_t d = 0;
  for (const auto& [name, t] : global)
    if (floating(t)) d += t.numel();
  return d;
}

}  // namespace

torch::Tensor sample_weights(const std::vector<ClientUpdate>& updates) {
  auto w = torch::empty({static_cast<int64_t>(updates.size())}, torch::kFloat64);
  auto a = w.accessor<double, 1>();
  for (size_t i = 0; i < updates.size(); ++i) {
    a[static_cast<int64_t>(i)] =
        static_cast<double>(updates[i].num_samples) * updates[i].weight;
  }
  return w;
}

Result<torch::Tensor> stack_deltas(const std::vector<ClientUpdate>& updates,
                                   const StateDict& global) {
  if (updates.empty()) return Status::InvalidArgument("no update to stack");
  torch::NoGradGuard no_grad;
  auto rows = torch::empty({static_cast<int64_t>(updates.size()), flat_size(global)},
                           torch::kFloat32);
  for (size_t i = 0; i < updates.size(); ++i) {
    FEDVAR_RETURN_IF_ERROR(check_same_layout(updates[i].state, global));
    int64_t offset = 0;
    for (const auto& [name, g] : global) {
      if (!floating(g)) continue;
      const int64_t n = g.numel();
      rows[static_cast<int64_t>(i)]
          .narrow(0, offset, n)
          .copy_((updates[i].state.at(name).to(torch::kFloat32) - g.to(torch::kFloat32))
                     .reshape(-1));
      offset += n;
    }
  }
  return rows;
}

Result<StateDict> apply_delta(const StateDict& global, const torch::Tensor& delta,
                              const std::vector<ClientUpdate>& updates) {
  if (delta.dim() != 1 || delta.size(0) != flat_size(global)) {
    return Status::InvalidArgument("a delta of the wrong size for the global model");
  }
  torch::NoGradGuard no_grad;
  const auto weights = sample_weights(updates);
  const double total = weights.sum().item<double>();
  StateDict out;
  int64_t offset = 0;
  for (const auto& [name, g] : global) {
    if (floating(g)) {
      const int64_t n = g.numel();
      out[name] = (g.to(torch::kFloat64) +
                   delta.narrow(0, offset, n).to(torch::kFloat64).view(g.sizes()))
                      .to(g.scalar_type());
      offset += n;
      continue;
    }
    double sum = 0;  // integer buffers: FedAvg's rounded weighted mean
    for (size_t i = 0; i < updates.size(); ++i) {
      sum += weights[static_cast<int64_t>(i)].item<double>() *
             updates[i].state.at(name).to(torch::kFloat64).item<double>();
    }
    out[name] = torch::full_like(g, total > 0 ? std::round(sum / total) : 0.0);
  }
  return out;
}

Status set_deltas(std::vector<ClientUpdate>& updates, const torch::Tensor& deltas,
                  const StateDict& global) {
  if (deltas.dim() != 2 || deltas.size(0) != static_cast<int64_t>(updates.size())) {
    return Status::InvalidArgument("deltas do not match the updates");
  }
  for (size_t i = 0; i < updates.size(); ++i) {
    FEDVAR_ASSIGN_OR_RETURN(
        updates[i].state,
        apply_delta(global, deltas[static_cast<int64_t>(i)], {updates[i]}));
  }
  return Status::Ok();
}

}  // namespace fedvar::aggregator
