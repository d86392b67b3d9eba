#include "plugins/registry.h"

#include "plugins/anp.h"
#include "plugins/chain.h"
#include "plugins/fine_pruning.h"
#include "plugins/fine_tuning.h"
#include "plugins/fst.h"
#include "plugins/ibau.h"
#include "plugins/nad.h"
#include "plugins/sau.h"
#include "plugins/vardefense.h"

namespace fedvar::plugins {
namespace {

template <typename DefenseT, typename OptionsT>
Result<std::unique_ptr<Defense>> build(const Options& options) {
  FEDVAR_ASSIGN_OR_RETURN(auto o, OptionsT::table().parse(options));
  return std::unique_ptr<Defense>(std::make_unique<DefenseT>(o));
}

}  // namespace

std::vector<std::string> defense_names() {
  return {"vardefense", "fine-pruning", "nad", "fine-tuning",
          "fst",        "anp",          "sau", "i-bau"};
}

Result<std::unique_ptr<Defense>> make_defense(const std::string& name,
                                              const Options& options) {
  if (name == "vardefense") return build<VarDefense, VarDefenseOptions>(options);
  if (name == "fine-pruning") return build<FinePruning, FinePruningOptions>(options);
  if (name == "nad") return build<Nad, NadOptions>(options);
  if (name == "fine-tuning") return build<FineTuning, FineTuningOptions>(options);
  if (name == "fst") return build<Fst, FstOptions>(options);
  if (name == "anp") return build<Anp, AnpOptions>(options);
  if (name == "sau") return build<Sau, SauOptions>(options);
  if (name == "i-bau") return build<Ibau, IbauOptions>(options);
  std::string known;
  for (const auto& n : defense_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("unknown defense '" + name + "' (known: " + known + ")");
}

std::vector<DefenseInfo> defense_catalog() {
  return {
      {"vardefense",
       "VarDefense (Fan et al. 2021): purify the low-variance channels, fine-tune with "
       "CE + L1",
       VarDefenseOptions::table().describe(VarDefenseOptions{})},
      {"fine-pruning",
       "Fine-pruning (Liu et al. 2018): prune the least active channels of the last "
       "conv, fine-tune",
       FinePruningOptions::table().describe(FinePruningOptions{})},
      {"nad", "Neural Attention Distillation (Li et al. 2021)",
       NadOptions::table().describe(NadOptions{})},
      {"fine-tuning", "Fine-tuning on the clean set: the baseline",
       FineTuningOptions::table().describe(FineTuningOptions{})},
      {"fst",
       "Feature Shift Tuning (Min et al. 2023): re-initialise the head, fine-tune with "
       "a penalty on its alignment with the old head",
       FstOptions::table().describe(FstOptions{})},
      {"anp",
       "Adversarial Neuron Pruning (Wu & Wang 2021): learn BatchNorm neuron masks under "
       "adversarial perturbation, prune the low ones within a holdout ACC budget",
       AnpOptions::table().describe(AnpOptions{})},
      {"sau",
       "Shared Adversarial Unlearning (Wei et al. 2023): unlearn adversarial examples "
       "the model shares with its frozen backdoored copy",
       SauOptions::table().describe(SauOptions{})},
      {"i-bau",
       "Implicit Backdoor Adversarial Unlearning (Zeng et al. 2022): min-max over a "
       "universal perturbation, the model updated by the implicit hypergradient",
       IbauOptions::table().describe(IbauOptions{})},
  };
}

Result<std::unique_ptr<Defense>> make_defense(const std::string& spec) {
  const auto chain = split_chain(spec);
  if (chain.size() > 1) {
    std::vector<std::unique_ptr<Defense>> steps;
    for (const auto& step : chain) {
      if (step.empty()) {
        return Status::InvalidArgument("empty step in defense chain '" + spec + "'");
      }
      FEDVAR_ASSIGN_OR_RETURN(auto defense, make_defense(step));
      steps.push_back(std::move(defense));
    }
    return make_chain(std::move(steps));
  }
  const Spec parts = split_spec(spec);
  FEDVAR_ASSIGN_OR_RETURN(auto options, parse_options(parts.options));
  return make_defense(parts.name, options);
}

}  // namespace fedvar::plugins
