#include "aggregator/flat_state.h"

#include <torch/torch.h>

#include <cmath>

namespace fedvar::aggregator {
namespace {

bool floating(const torch::Tensor& t) { return at::isFloatingType(t.scalar_type()); }

// Whether the updates' deltas are rows 0..n-1 of one contiguous matrix, in
// order, so that the matrix can be read in place.
bool consecutive_rows(const std::vector<ClientUpdate>& updates) {
  const torch::Tensor& first = updates[0].delta;
  if (!first.defined() || first.dim() != 1 || !first.is_contiguous()) return false;
  const auto* base = static_cast<const char*>(first.data_ptr());
  const auto row_bytes = static_cast<int64_t>(first.nbytes());
  for (size_t i = 0; i < updates.size(); ++i) {
    const torch::Tensor& d = updates[i].delta;
    if (!d.defined() || d.sizes() != first.sizes() ||
        d.scalar_type() != first.scalar_type() || !d.is_contiguous() ||
        static_cast<const char*>(d.data_ptr()) !=
            base + static_cast<int64_t>(i) * row_bytes ||
        !d.storage().is_alias_of(first.storage())) {
      return false;
    }
  }
  return true;
}

}  // namespace

int64_t flat_size(const StateDict& global) {
  int64_t d = 0;
  for (const auto& [name, t] : global)
    if (floating(t)) d += t.numel();
  return d;
}

Status write_delta(torch::Tensor row, const StateDict& update, const StateDict& global) {
  if (row.dim() != 1 || row.size(0) != flat_size(global) || !row.is_contiguous()) {
    return Status::InvalidArgument("a delta row of the wrong size for the global model");
  }
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& [name, g] : global) {
    if (!floating(g)) continue;
    const auto it = update.find(name);
    if (it == update.end()) return Status::InvalidArgument("the update has no " + name);
    torch::Tensor out = row.narrow(0, offset, g.numel()).view(g.sizes());
    at::sub_out(out, it->second.to(row.scalar_type()), g.to(row.scalar_type()));
    offset += g.numel();
  }
  return Status::Ok();
}

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
  const int64_t n = static_cast<int64_t>(updates.size());
  const int64_t d = flat_size(global);
  if (consecutive_rows(updates) && updates[0].delta.size(0) == d) {
    return updates[0].delta.as_strided({n, d}, {d, 1});
  }
  auto rows = torch::empty({n, d}, torch::kFloat32);
  for (int64_t i = 0; i < n; ++i) {
    const ClientUpdate& u = updates[static_cast<size_t>(i)];
    if (u.delta.defined()) {
      if (u.delta.dim() != 1 || u.delta.size(0) != d) {
        return Status::InvalidArgument("an update's delta does not fit the global model");
      }
      rows[i].copy_(u.delta);
      continue;
    }
    FEDVAR_RETURN_IF_ERROR(check_same_layout(u.state, global));
    FEDVAR_RETURN_IF_ERROR(write_delta(rows[i], u.state, global));
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
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < updates.size(); ++i) {
    const torch::Tensor row = deltas[static_cast<int64_t>(i)];
    if (updates[i].delta.defined()) {
      if (updates[i].delta.data_ptr() != row.data_ptr()) updates[i].delta.copy_(row);
      continue;
    }
    FEDVAR_ASSIGN_OR_RETURN(updates[i].state, apply_delta(global, row, {updates[i]}));
  }
  return Status::Ok();
}

}  // namespace fedvar::aggregator
