// fedvar eval: clean accuracy and attack success rate of a model file.
#include "cli/commands.h"

#include <cstdint>

#include "cli/common.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/model_io.h"

namespace fedvar::cli {
namespace {

struct EvalArgs {
  std::string model;
  std::string data;
  std::string split = "test";
  std::string range;
  std::string trigger;
  int64_t target = 0;
  std::string normalize;
  ArchFlags arch;
  ComputeFlags compute;
};

Status run_eval(const EvalArgs& a, nlohmann::json& result) {
  FEDVAR_ASSIGN_OR_RETURN(auto device, apply_compute_flags(a.compute));
  FEDVAR_ASSIGN_OR_RETURN(auto loaded, load_resnet(a.model, a.arch.overrides()));
  FEDVAR_ASSIGN_OR_RETURN(auto data, load_split_range(a.data, a.split, a.range));
  if (data.size() == 0) return Status::InvalidArgument("no images to evaluate");
  auto& model = loaded.model;
  if (data.channels() != model->options().in_channels) {
    return Status::InvalidArgument("the data has " + std::to_string(data.channels()) +
                                   " channel(s), the model " +
                                   std::to_string(model->options().in_channels));
  }
  EvalOptions opts;
  opts.device = device;
  FEDVAR_ASSIGN_OR_RETURN(opts.normalization,
                          resolve_normalization(a.normalize, loaded.normalization, data));
  FEDVAR_ASSIGN_OR_RETURN(const double acc, accuracy_percent(model, data, opts));
  result = {{"model", a.model}, {"images", data.size()}, {"acc", acc}};
  if (!a.trigger.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(auto spec, parse_trigger(a.trigger));
    FEDVAR_RETURN_IF_ERROR(
        check_trigger_fits(spec, data.images.size(2), data.images.size(3)));
    result["trigger"] = spec.to_string();
    result["target"] = a.target;
    FEDVAR_ASSIGN_OR_RETURN(result["asr"],
                            attack_success_percent(model, data, spec, a.target, opts));
    FEDVAR_ASSIGN_OR_RETURN(result["clean_to_target"],
                            clean_to_target_percent(model, data, a.target, opts));
  }
  return Status::Ok();
}

}  // namespace

void register_eval(CLI::App& app, Commands& commands) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "Print a model's ACC (and ASR) as JSON");
  cmd->add_option("--model", args->model, "Model file (.safetensors)")->required();
  cmd->add_option("--data", args->data, "Data set directory")->required();
  cmd->add_option("--split", args->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}));
  cmd->add_option("--range", args->range, "Rows of the split, A:B");
  cmd->add_option("--trigger", args->trigger, "Trigger spec to measure ASR with");
  cmd->add_option("--target", args->target, "Target label of the backdoor");
  add_normalize_flag(*cmd, args->normalize);
  add_arch_flags(*cmd, args->arch);
  add_compute_flags(*cmd, args->compute);
  cmd->callback([args, &commands] {
    commands.action =
        json_action([args](nlohmann::json& out) { return run_eval(*args, out); });
  });
}

}  // namespace fedvar::cli
