// Defenses in sequence, e.g. "vardefense+fst": variance pruning, then Feature
// Shift Tuning on its output. Every step gets the same clean set and seed;
// the split is nested (a smaller holdout share is the start of a larger
// one), so the chain judges by the smallest share's images, which no step
// trained on. Being a Defense, a chain serves wherever a spec does: purify,
// the federation's after-rules, the C ABI, Python and the defend service.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "plugins/defense.h"

namespace fedvar::plugins {

inline constexpr size_t kMaxChainSteps = 8;

// The chain of `steps` (1..kMaxChainSteps, else kInvalidArgument). Its name
// joins theirs with '+'; its report adds "steps", each step's full report,
// and its options are a list, one object per step.
Result<std::unique_ptr<Defense>> make_chain(std::vector<std::unique_ptr<Defense>> steps);

// The steps of a chain spec: "vardefense:preset=one-shot+fst" ->
// {"vardefense:preset=one-shot", "fst"}. It splits at each '+' followed by a
// letter, so a number's exponent ("lr=1e+3") stays in its step.
std::vector<std::string> split_chain(const std::string& spec);

}  // namespace fedvar::plugins
