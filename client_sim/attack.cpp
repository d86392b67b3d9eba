#include "client_sim/attack.h"

#include <ATen/ATen.h>

#include <climits>
#include <sstream>

namespace fedvar::client_sim {
namespace {

Result<int> parse_round(const std::string& text, const std::string& whole) {
  try {
    size_t used = 0;
    const int value = std::stoi(text, &used);
    if (used == text.size() && value >= 1) return value;
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("bad attack rounds '" + whole +
                                 "': expected all, or rounds >= 1 like 1,3,5-8 or 10-");
}

}  // namespace

Result<AttackSchedule> AttackSchedule::parse(const std::string& text) {
  AttackSchedule schedule;
  schedule.text_ = text;
  if (text == "all") return schedule;
  std::stringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      FEDVAR_ASSIGN_OR_RETURN(int round, parse_round(item, text));
      schedule.spans_.emplace_back(round, round);
      continue;
    }
    FEDVAR_ASSIGN_OR_RETURN(int first, parse_round(item.substr(0, dash), text));
    int last = INT_MAX;
    if (dash + 1 < item.size()) {
      FEDVAR_ASSIGN_OR_RETURN(last, parse_round(item.substr(dash + 1), text));
    }
    if (last < first)
      return Status::InvalidArgument("empty span in attack rounds '" + text + "'");
    schedule.spans_.emplace_back(first, last);
  }
  if (schedule.spans_.empty()) {
    return Status::InvalidArgument("attack rounds '" + text + "' name no round");
  }
  return schedule;
}

bool AttackSchedule::contains(int round) const {
  if (spans_.empty()) return true;  // "all"
  for (const auto& [first, last] : spans_) {
    if (round >= first && round <= last) return true;
  }
  return false;
}

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
