#include "plugins/chain.h"

#include <algorithm>
#include <cctype>

namespace fedvar::plugins {

class DefenseChain : public Defense {
 public:
  explicit DefenseChain(std::vector<std::unique_ptr<Defense>> steps)
      : steps_(std::move(steps)) {}

  std::string name() const override {
    std::string joined;
    for (const auto& step : steps_) joined += (joined.empty() ? "" : "+") + step->name();
    return joined;
  }

 protected:
  double holdout() const override {
    double smallest = steps_.front()->holdout();
    for (const auto& step : steps_) smallest = std::min(smallest, step->holdout());
    return smallest;
  }

  nlohmann::json options() const override {
    auto all = nlohmann::json::array();
    for (const auto& step : steps_) all.push_back(step->options());
    return all;
  }

  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& /*split*/,
                                double /*acc_before*/,
                                const DefenseContext& ctx) override {
    nlohmann::json report = {{"steps", nlohmann::json::array()}};
    for (size_t i = 0; i < steps_.size(); ++i) {
      const std::string label = "step " + std::to_string(i + 1) + "/" +
                                std::to_string(steps_.size()) + " (" + steps_[i]->name() +
                                ")";
      ctx.say(name() + ": " + label);
      auto step = steps_[i]->apply(model, ctx);
      if (!step.ok()) return step.status().with_context(label);
      report["seconds"][std::to_string(i + 1) + "-" + steps_[i]->name()] =
          (*step)["seconds"]["total"];
      report["steps"].push_back(std::move(*step));
    }
    return report;
  }

 private:
  std::vector<std::unique_ptr<Defense>> steps_;
};

Result<std::unique_ptr<Defense>> make_chain(std::vector<std::unique_ptr<Defense>> steps) {
  if (steps.empty() || steps.size() > kMaxChainSteps) {
    return Status::InvalidArgument("a defense chain takes at least 1 and at most " +
                                   std::to_string(kMaxChainSteps) + " steps, not " +
                                   std::to_string(steps.size()));
  }
  for (const auto& step : steps) {
    if (!step) return Status::InvalidArgument("a defense chain's step is missing");
  }
  return std::unique_ptr<Defense>(std::make_unique<DefenseChain>(std::move(steps)));
}

std::vector<std::string> split_chain(const std::string& spec) {
  std::vector<std::string> steps(1);
  for (size_t i = 0; i < spec.size(); ++i) {
    const bool next_is_letter =
        i + 1 < spec.size() && std::isalpha(static_cast<unsigned char>(spec[i + 1]));
    if (spec[i] == '+' && next_is_letter) {
      steps.emplace_back();
    } else {
      steps.back() += spec[i];
    }
  }
  return steps;
}

}  // namespace fedvar::plugins
