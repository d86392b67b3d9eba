#include "plugins/registry.h"

#include "plugins/fine_pruning.h"
#include "plugins/fine_tuning.h"
#include "plugins/nad.h"
#include "plugins/vardefense.h"

namespace fedvar::plugins {
namespace {

template <typename DefenseT, typename OptionsT>
Result<std::unique_ptr<Defense>> build(const Options& options) {
  FEDVAR_ASSIGN_OR_RETURN(auto o, OptionsT::from(options));
  return std::unique_ptr<Defense>(std::make_unique<DefenseT>(o));
}

}  // namespace

std::vector<std::string> defense_names() {
  return {"vardefense", "fine-pruning", "nad", "fine-tuning"};
}

Result<std::unique_ptr<Defense>> make_defense(const std::string& name,
                                              const Options& options) {
  if (name == "vardefense") return build<VarDefense, VarDefenseOptions>(options);
  if (name == "fine-pruning") return build<FinePruning, FinePruningOptions>(options);
  if (name == "nad") return build<Nad, NadOptions>(options);
  if (name == "fine-tuning") return build<FineTuning, FineTuningOptions>(options);
  std::string known;
  for (const auto& n : defense_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("unknown defense '" + name + "' (known: " + known + ")");
}

Result<std::unique_ptr<Defense>> make_defense(const std::string& spec) {
  const auto colon = spec.find(':');
  FEDVAR_ASSIGN_OR_RETURN(
      auto options,
      parse_options(colon == std::string::npos ? "" : spec.substr(colon + 1)));
  return make_defense(spec.substr(0, colon), options);
}

}  // namespace fedvar::plugins
