#include "client_sim/attack.h"

#include <ATen/ATen.h>

namespace fedvar::client_sim {
Result<StateDict> scale_update(const StateDict& local, const StateDict& global,
                               double scale) {
  torch::NoGradGuard no_grad;
  StateDict out;
  for (const auto& [name, g] : global) {
    const auto it = local.find(name);
    if (it == local.end() || it->second.sizes() != g.sizes()) {
      return Status::InvalidArgument("local model and global model differ at '" + name +
                                     "'");
    }
    const torch::Tensor l = it->second.to(torch::kCPU);
    if (!at::isFloatingType(g.scalar_type())) {
      out[name] = l.clone();
      continue;
    }
    const torch::Tensor g_cpu = g.to(torch::kCPU);
    out[name] = (g_cpu + scale * (l - g_cpu)).to(g.scalar_type());
  }
  if (local.size() != global.size()) {
    return Status::InvalidArgument("local model has tensors the global model lacks");
  }
  return out;
}

}  // namespace fedvar::client_sim
