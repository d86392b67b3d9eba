// Defenses in sequence, e.g. "vardefense+fst": variance pruning, then Feature
// Shift Tuning on its output. Every step gets the same clean set and seed, so
// steps with the same holdout share hold out the same images, and none trains
// on images another step judges by. Being a Defense, a chain serves wherever
// a spec does: purify, the federation's after-rules, the C ABI, Python and
// the defend service.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "plugins/defense.h"

namespace fedvar::plugins {

class DefenseChain : public Defense {
 public:
  explicit DefenseChain(std::vector<std::unique_ptr<Defense>> steps);
  std::string name() const override;  // the steps' names joined by '+'

 protected:
  double holdout() const override;          // the first step's
  nlohmann::json options() const override;  // [each step's options]
  // Report: {"steps": [each step's report]}.
  Result<nlohmann::json> purify(ResNet18& model, const CleanSplit& split,
                                double acc_before, const DefenseContext& ctx) override;

 private:
  std::vector<std::unique_ptr<Defense>> steps_;
};

// The steps of a chain spec: "vardefense:preset=one-shot+fst" ->
// {"vardefense:preset=one-shot", "fst"}. It splits at each '+' followed by a
// letter, so a number's exponent ("lr=1e+3") stays in its step.
std::vector<std::string> split_chain(const std::string& spec);

}  // namespace fedvar::plugins
