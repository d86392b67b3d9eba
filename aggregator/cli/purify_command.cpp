// fedvar purify: run a defense on a model file with a clean data range.
#include <filesystem>

#include "aggregator/cli/commands.h"
#include "aggregator/cli/common.h"
#include "core/device.h"
#include "core/log.h"
#include "core/model_io.h"
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
  std::string stem;
  int64_t in_channels = 0;
  std::string normalize;
  std::string device = "auto";
  uint64_t seed = 0;
};

Result<plugins::DefenseContext> make_context(const PurifyArgs& a, const LoadedModel& m) {
  plugins::DefenseContext ctx;
  FEDVAR_ASSIGN_OR_RETURN(ctx.device, resolve_device(a.device));
  FEDVAR_ASSIGN_OR_RETURN(ctx.clean, load_split_range(a.data, a.split, a.range));
  if (ctx.clean.size() == 0) return Status::InvalidArgument("the clean range is empty");
  if (ctx.clean.channels() != m.model->options().in_channels) {
    return Status::InvalidArgument(
        "the model takes " + std::to_string(m.model->options().in_channels) +
        " channel(s), the data has " + std::to_string(ctx.clean.channels()) +
        " (wrong architecture? see --in-channels)");
  }
  if (!a.normalize.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(ctx.normalization, Normalization::parse(a.normalize));
  } else if (m.normalization) {
    ctx.normalization = *m.normalization;
  } else {
    spdlog::warn(
        "purify: no normalization in the model file; estimating it from the "
        "clean set (pass --normalize MEAN,STD to set it)");
    ctx.normalization = Normalization::estimate(ctx.clean);
  }
  FEDVAR_RETURN_IF_ERROR(ctx.normalization.check_channels(ctx.clean.channels()));
  ctx.seed = a.seed;
  ctx.progress = [](const std::string& line) { spdlog::info("{}", line); };
  return ctx;
}

Status run_purify(const PurifyArgs& a, nlohmann::json& report) {
  std::string spec = a.defense;
  if (a.acc_budget >= 0) {
    spec += (spec.find(':') == std::string::npos ? ":" : ",") +
            std::string("acc_budget=") + std::to_string(a.acc_budget);
  }
  FEDVAR_ASSIGN_OR_RETURN(auto defense, plugins::make_defense(spec));
  ArchOverrides overrides;
  if (!a.stem.empty())
    overrides.stem = a.stem == "imagenet" ? Stem::kImagenet : Stem::kCifar;
  if (a.in_channels > 0) overrides.in_channels = a.in_channels;
  FEDVAR_ASSIGN_OR_RETURN(auto loaded, load_resnet(a.model, overrides));
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
  cmd->add_option("--defense", args->defense,
                  "NAME[:key=value,...]: vardefense, fine-pruning, nad, fine-tuning");
  cmd->add_option("--acc-budget", args->acc_budget,
                  "vardefense: pick alpha so holdout ACC stays within P points");
  cmd->add_option("--stem", args->stem, "Override the inferred stem (cifar|imagenet)")
      ->check(CLI::IsMember({"cifar", "imagenet"}));
  cmd->add_option("--in-channels", args->in_channels,
                  "Override the inferred in-channels");
  cmd->add_option("--normalize", args->normalize,
                  "MEAN,STD per channel (default: from the model file)");
  cmd->add_option("--device", args->device, "auto, cpu, cuda or cuda:N");
  cmd->add_option("--seed", args->seed, "Seed for the holdout split and shuffling");
  cmd->callback([args, &commands] {
    commands.action =
        json_action([args](nlohmann::json& out) { return run_purify(*args, out); });
  });
}

}  // namespace fedvar::cli
