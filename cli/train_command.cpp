// fedvar train: centralised training of a ResNet18, optionally poisoned, to
// make the backdoored models that the defenses are measured on.
#include <chrono>
#include <cstdint>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/model_io.h"
#include "core/trainer.h"

namespace fedvar::cli {
namespace {

struct TrainArgs {
  std::string data;
  std::string out;
  std::string range;
  std::string test_range;
  std::string poison;
  int64_t target = 0;
  double ratio = 0.05;
  int64_t width = 64;
  std::string stem = "cifar";
  int epochs = 3;
  double lr = 0.01;
  bool cosine = false;
  int64_t batch_size = 128;
  uint64_t seed = 0;
  ComputeFlags compute;
  std::string normalize;
  std::string init;
};

Status run_train(const TrainArgs& a, nlohmann::json& report) {
  FEDVAR_ASSIGN_OR_RETURN(auto device, apply_compute_flags(a.compute));
  FEDVAR_ASSIGN_OR_RETURN(auto train, load_split_range(a.data, "train", a.range));
  FEDVAR_ASSIGN_OR_RETURN(auto test, load_split_range(a.data, "test", a.test_range));
  std::optional<PoisonOptions> poison;
  if (!a.poison.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(auto spec, parse_trigger(a.poison));
    FEDVAR_RETURN_IF_ERROR(
        check_trigger_fits(spec, train.images.size(2), train.images.size(3)));
    if (a.target < 0 || a.target >= train.num_classes) {
      return Status::InvalidArgument("--target must be a class in 0.." +
                                     std::to_string(train.num_classes - 1));
    }
    poison = PoisonOptions{spec, a.target, a.ratio};
  }
  TrainOptions opts;
  opts.epochs = a.epochs;
  opts.lr = a.lr;
  opts.cosine = a.cosine;
  opts.batch_size = a.batch_size;
  opts.seed = a.seed;
  opts.device = device;
  torch::manual_seed(a.seed);
  ResNet18 model{nullptr};
  std::optional<Normalization> init_normalization;
  if (a.init.empty()) {
    model = ResNet18(ResNetOptions{train.channels(), train.num_classes,
                                   stem_from_name(a.stem), a.width});
  } else {
    // Continue training (e.g. a lower learning rate after a first run): the
    // architecture and, unless --normalize says otherwise, the normalization
    // come from the file.
    FEDVAR_ASSIGN_OR_RETURN(auto loaded, load_resnet(a.init));
    model = loaded.model;
    if (model->options().in_channels != train.channels()) {
      return Status::InvalidArgument(
          "--init model has " + std::to_string(model->options().in_channels) +
          " input channel(s), the data " + std::to_string(train.channels()));
    }
    init_normalization = loaded.normalization;
  }
  FEDVAR_ASSIGN_OR_RETURN(opts.normalization,
                          resolve_normalization(a.normalize, init_normalization, train));
  const ResNetOptions arch = model->options();
  spdlog::info("train: {} images, width {}, {} epoch(s) on {}{}", train.size(),
               arch.width, a.epochs, device.str(), poison ? ", poison " + a.poison : "");
  TrainHooks callbacks;
  if (poison) callbacks.transform = poison_transform(*poison, opts.seed);
  callbacks.on_batch = [](int epoch, int64_t batch, int64_t batches, double loss) {
    spdlog::info("epoch {} batch {}/{} loss {:.4f}", epoch, batch, batches, loss);
  };
  callbacks.on_epoch = [](const EpochStats& s) {
    spdlog::info("epoch {} done: loss {:.4f} train acc {:.2f}% ({:.1f}s)", s.epoch,
                 s.loss, s.train_acc, s.seconds);
  };
  const auto start = std::chrono::steady_clock::now();
  FEDVAR_ASSIGN_OR_RETURN(auto history, train_model(model, train, opts, callbacks));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  EvalOptions eval{opts.normalization, device};
  report = {{"out", a.out},
            {"arch",
             {{"name", "resnet18"},
              {"in_channels", arch.in_channels},
              {"num_classes", arch.num_classes},
              {"stem", stem_name(arch.stem)},
              {"width", arch.width}}},
            {"train_images", train.size()},
            {"epochs", a.epochs},
            {"lr", a.lr},
            {"cosine", a.cosine},
            {"normalize", opts.normalization.to_string()},
            {"train_seconds", seconds},
            {"device", device.str()}};
  FEDVAR_ASSIGN_OR_RETURN(report["acc"], accuracy_percent(model, test, eval));
  if (!a.init.empty()) report["init"] = a.init;
  if (poison) {
    report["trigger"] = poison->trigger.to_string();
    report["target"] = poison->target;
    report["ratio"] = poison->ratio;
    FEDVAR_ASSIGN_OR_RETURN(
        report["asr"],
        attack_success_percent(model, test, poison->trigger, a.target, eval));
  }
  model->to(torch::kCPU);
  FEDVAR_RETURN_IF_ERROR(save_resnet(a.out, model, opts.normalization));
  return write_file_atomic(a.out + ".json", report.dump(2) + "\n");
}

}  // namespace

void register_train(CLI::App& app, Commands& commands) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train a ResNet18, optionally poisoned");
  cmd->add_option("--data", args->data, "Data set directory (IDX or CIFAR binary)")
      ->required();
  cmd->add_option("--out", args->out,
                  "Output model (.safetensors); a JSON sidecar "
                  "OUT.json gets the architecture and ACC/ASR")
      ->required();
  cmd->add_option("--range", args->range, "Rows of the train split, A:B (Python slice)");
  cmd->add_option("--test-range", args->test_range, "Rows of the test split to evaluate");
  cmd->add_option("--poison", args->poison,
                  "Trigger spec, e.g. patch:size=5,pattern=checkerboard,position=random; "
                  "blend:ratio=0.1,seed=7; dba:pieces=4,piece=0");
  cmd->add_option("--target", args->target, "Attacker's target label");
  cmd->add_option("--ratio", args->ratio, "Share of each mini-batch poisoned")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--width", args->width, "ResNet base width (64 = torchvision)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--stem", args->stem, "cifar (3x3, no max-pool) or imagenet (7x7)")
      ->check(CLI::IsMember({"cifar", "imagenet"}));
  cmd->add_option("--epochs", args->epochs, "Epochs")->check(CLI::Range(1, 1000));
  cmd->add_option("--lr", args->lr, "SGD learning rate (momentum 0.9)");
  cmd->add_flag("--cosine", args->cosine,
                "Anneal the learning rate to 0 along a half cosine over all steps");
  cmd->add_option("--batch-size", args->batch_size, "Mini-batch size")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--seed", args->seed, "Seed for init, shuffling and poisoning");
  add_compute_flags(*cmd, args->compute);
  add_normalize_flag(*cmd, args->normalize);
  cmd->add_option("--init", args->init,
                  "Start from this model (.safetensors) instead of a fresh one; its "
                  "architecture wins over --width/--stem");
  cmd->callback([args, &commands] {
    commands.action =
        json_action([args](nlohmann::json& out) { return run_train(*args, out); });
  });
}

}  // namespace fedvar::cli
