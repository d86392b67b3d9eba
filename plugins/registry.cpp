#include "plugins/registry.h"

#include "plugins/anp.h"
#include "plugins/fine_pruning.h"
#include "plugins/fine_tuning.h"
#include "plugins/fst.h"
#include "plugins/nad.h"
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
  return {"vardefense", "fine-pruning", "nad", "fine-tuning", "fst", "anp"};
}

Result<std::unique_ptr<Defense>> make_defense(const std::string& name,
                                              const Options& options) {
  if (name == "vardefense") return build<VarDefense, VarDefenseOptions>(options);
  if (name == "fine-pruning") return build<FinePruning, FinePruningOptions>(options);
  if (name == "nad") return build<Nad, NadOptions>(options);
  if (name == "fine-tuning") return build<FineTuning, FineTuningOptions>(options);
  if (name == "fst") return build<Fst, FstOptions>(options);
  if (name == "anp") return build<Anp, AnpOptions>(options);
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
  };
}

Result<std::unique_ptr<Defense>> make_defense(const std::string& spec) {
  const Spec parts = split_spec(spec);
  FEDVAR_ASSIGN_OR_RETURN(auto options, parse_options(parts.options));
  return make_defense(parts.name, options);
}

}  // namespace fedvar::plugins
