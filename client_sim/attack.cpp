#include "client_sim/attack.h"

#include <ATen/ATen.h>

namespace fedvar::client_sim {
Result<StateDict> scale_update(const StateDict& local, const StateDict& global,
                               double scale) {
  FEDVAR_RETURN_IF_ERROR(check_same_layout(local, global));
  torch::NoGradGuard no_grad;
  StateDict out;
  for (const auto& [name, g] : global) {
    const torch::Tensor l = local.at(name).to(torch::kCPU);
    if (!at::isFloatingType(g.scalar_type()) || is_buffer_name(name)) {
      out[name] = l.clone();
      continue;
    }
    const torch::Tensor g_cpu = g.to(torch::kCPU);
    out[name] = (g_cpu + scale * (l - g_cpu)).to(g.scalar_type());
  }
  return out;
}

}  // namespace fedvar::client_sim
