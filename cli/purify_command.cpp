// fedvar purify: run a defense on a model file with a clean data range.
#include <cstdint>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/log.h"
#include "core/model_io.h"
#include "plugins/chain.h"
#include "plugins/registry.h"

namespace fedvar::cli {
namespace {

struct PurifyArgs {
  std::string model;
  std::string out;
  std::string data;
  std::string split = "train";
  std::string range;
  std::string defense = "vardefense";
  double acc_budget = -1;
  std::string normalize;
  ArchFlags arch;
  ComputeFlags compute;
  uint64_t seed = 0;
};

Result<plugins::DefenseContext> make_context(const PurifyArgs& a, const LoadedModel& m) {
  plugins::DefenseContext ctx;
  FEDVAR_ASSIGN_OR_RETURN(ctx.device, apply_compute_flags(a.compute));
  FEDVAR_ASSIGN_OR_RETURN(ctx.clean, load_split_range(a.data, a.split, a.range));
  if (ctx.clean.size() == 0) return Status::InvalidArgument("the clean range is empty");
  if (ctx.clean.channels() != m.model->options().in_channels) {
    return Status::InvalidArgument(
        "the model takes " + std::to_string(m.model->options().in_channels) +
        " channel(s), the data has " + std::to_string(ctx.clean.channels()) +
        " (wrong architecture? see --in-channels)");
  }
  FEDVAR_ASSIGN_OR_RETURN(ctx.normalization,
                          resolve_normalization(a.normalize, m.normalization, ctx.clean));
  ctx.seed = a.seed;
  ctx.progress = [](const std::string& line) { spdlog::info("{}", line); };
  return ctx;
}

Status run_purify(const PurifyArgs& a, nlohmann::json& report) {
  std::string spec = a.defense;
  if (a.acc_budget >= 0) {
    if (plugins::split_chain(spec).size() > 1) {
      return Status::InvalidArgument(
          "--acc-budget takes one defense; in a chain give the step acc_budget=P");
    }
    spec += (spec.find(':') == std::string::npos ? ":" : ",") +
            std::string("acc_budget=") + std::to_string(a.acc_budget);
  }
  FEDVAR_ASSIGN_OR_RETURN(auto defense, plugins::make_defense(spec));
  FEDVAR_ASSIGN_OR_RETURN(auto loaded, load_resnet(a.model, a.arch.overrides()));
  FEDVAR_ASSIGN_OR_RETURN(auto ctx, make_context(a, loaded));
  spdlog::info("purify: {} on {} clean image(s), {}", defense->name(), ctx.clean.size(),
               ctx.device.str());
  FEDVAR_ASSIGN_OR_RETURN(report, defense->apply(loaded.model, ctx));
  report["model"] = a.model;
  report["out"] = a.out;
  report["clean_images"] = ctx.clean.size();
  loaded.model->to(torch::kCPU);
  return save_resnet(a.out, loaded.model, ctx.normalization,
                     {{"purified_by", defense->name()}});
}

}  // namespace

void register_purify(CLI::App& app, Commands& commands) {
  auto args = std::make_shared<PurifyArgs>();
  auto* cmd = app.add_subcommand(
      "purify", "Remove a backdoor from a ResNet18 file with a small clean data set");
  cmd->add_option("--model", args->model, "Input model (.safetensors)")->required();
  cmd->add_option("--out", args->out, "Purified model, written atomically")->required();
  cmd->add_option("--data", args->data, "Data set directory")->required();
  cmd->add_option("--split", args->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}));
  cmd->add_option("--range", args->range, "The clean rows, A:B (e.g. -1000:)")
      ->required();
  cmd->add_option(
      "--defense", args->defense,
      "NAME[:key=value,...]: vardefense, fine-pruning, nad, fine-tuning, fst, anp, "
      "sau, i-bau; A+B runs A, then B on its output");
  cmd->add_option("--acc-budget", args->acc_budget,
                  "vardefense: pick alpha so holdout ACC stays within P points");
  add_arch_flags(*cmd, args->arch);
  add_normalize_flag(*cmd, args->normalize);
  add_compute_flags(*cmd, args->compute);
  cmd->add_option("--seed", args->seed, "Seed for the holdout split and shuffling");
  cmd->callback([args, &commands] {
    commands.action =
        json_action([args](nlohmann::json& out) { return run_purify(*args, out); });
  });
}

}  // namespace fedvar::cli
