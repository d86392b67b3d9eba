// fedvar serve: the federated server with its Strategy (rules before, on and
// after aggregation), round-by-round ACC/ASR in a metrics file and a
// checkpoint of the global model.
#include <cstdint>
#include <sstream>

#include "aggregator/resume.h"
#include "aggregator/round_recorder.h"
#include "aggregator/server.h"
#include "aggregator/strategy_specs.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/model_io.h"
#include "plugins/registry.h"

namespace fedvar::cli {
namespace {

struct ServeArgs {
  aggregator::ServerOptions server;
  std::string data;
  std::string endpoint_file;
  std::string clean_range = "-1000:";
  std::string test_range;
  aggregator::StrategySpecs strategy;
  std::string init;
  int64_t width = 64;
  std::string stem = "cifar";
  std::string trigger;
  int64_t target = 0;
  std::string malicious;
  std::string metrics;
  std::string checkpoint;
  std::string run = "run";
  ComputeFlags compute;
  std::string normalize;
  std::string key_file;
  bool resume = false;
};

std::set<std::string> split_ids(const std::string& text) {
  std::set<std::string> ids;
  std::stringstream in(text);
  std::string id;
  while (std::getline(in, id, ',')) {
    if (!id.empty()) ids.insert(id);
  }
  return ids;
}

// The initial global model: the checkpoint resumed from, --init's file, or a
// fresh seeded ResNet18.
Result<LoadedModel> initial_model(const ServeArgs& a, const Dataset& clean,
                                  aggregator::ResumePoint& resume) {
  if (resume.checkpoint) {
    spdlog::info("serve: resuming after round {} from {}", resume.last_round,
                 a.checkpoint);
    return std::move(*resume.checkpoint);
  }
  if (!a.init.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(auto loaded, load_resnet(a.init));
    spdlog::info("serve: initial global model from {} (width {})", a.init,
                 loaded.model->options().width);
    return loaded;
  }
  torch::manual_seed(a.server.seed);
  LoadedModel fresh;
  fresh.model = ResNet18(ResNetOptions{clean.channels(), clean.num_classes,
                                       stem_from_name(a.stem), a.width});
  return fresh;
}

// With --resume: where the run recorded in --checkpoint and --metrics stops.
Result<aggregator::ResumePoint> resume_point(const ServeArgs& a) {
  if (!a.resume) return aggregator::ResumePoint{};
  if (a.checkpoint.empty() || a.metrics.empty()) {
    return Status::InvalidArgument("--resume needs the run's --checkpoint and --metrics");
  }
  FEDVAR_ASSIGN_OR_RETURN(
      auto point, aggregator::read_resume_point(a.checkpoint, a.metrics, a.server.seed));
  if (point.last_round > a.server.rounds) {
    return Status::InvalidArgument("the checkpoint is of round " +
                                   std::to_string(point.last_round) + ", past --rounds " +
                                   std::to_string(a.server.rounds));
  }
  for (const auto* path : {&a.checkpoint, &a.metrics}) {
    if (int n = aggregator::remove_stale_temp_files(*path); n > 0) {
      spdlog::info("serve: removed {} unfinished write(s) of {}", n, *path);
    }
  }
  return point;
}

nlohmann::json serve_result(const ServeArgs& a,
                            const std::vector<nlohmann::json>& history) {
  nlohmann::json result = {{"run", a.run},
                           {"rounds", history.size()},
                           {"metrics", a.metrics},
                           {"checkpoint", a.checkpoint}};
  if (history.empty()) return result;
  for (const char* key : {"acc", "asr", "asr_pieces"}) result[key] = history.back()[key];
  return result;
}

Status run_serve(ServeArgs a, nlohmann::json& result) {
  FEDVAR_ASSIGN_OR_RETURN(a.server.key, load_key(a.key_file, KeyRole::kFederation));
  FEDVAR_ASSIGN_OR_RETURN(auto device, apply_compute_flags(a.compute));
  FEDVAR_ASSIGN_OR_RETURN(auto clean, load_split_range(a.data, "train", a.clean_range));
  FEDVAR_ASSIGN_OR_RETURN(auto test, load_split_range(a.data, "test", a.test_range));
  aggregator::EvalSpec eval{test, std::nullopt, a.target, EvalOptions{}};
  eval.options.device = device;
  if (!a.trigger.empty()) {
    FEDVAR_ASSIGN_OR_RETURN(auto spec, parse_trigger(a.trigger));
    FEDVAR_RETURN_IF_ERROR(
        check_trigger_fits(spec, test.images.size(2), test.images.size(3)));
    eval.trigger = spec;
  }
  FEDVAR_ASSIGN_OR_RETURN(auto resume, resume_point(a));
  if (resume.last_round == a.server.rounds && a.resume) {
    spdlog::info("serve: the run is complete ({} rounds); nothing to resume",
                 resume.last_round);
    result = serve_result(a, resume.history);
    return Status::Ok();
  }
  a.server.first_round = resume.last_round + 1;
  FEDVAR_ASSIGN_OR_RETURN(auto initial, initial_model(a, clean, resume));
  ResNet18 model = initial.model;
  FEDVAR_ASSIGN_OR_RETURN(
      eval.options.normalization,
      resolve_normalization(a.normalize, initial.normalization, clean));
  if (model->options().in_channels != clean.channels()) {
    return Status::InvalidArgument(
        "the initial model's input channels do not match the data");
  }

  plugins::DefenseContext context;
  context.clean = clean;
  context.normalization = eval.options.normalization;
  context.device = device;
  context.seed = a.server.seed;
  context.progress = [](const std::string& line) { spdlog::info("  {}", line); };
  FEDVAR_ASSIGN_OR_RETURN(auto strategy, aggregator::make_strategy(a.strategy, context));
  spdlog::info("serve: {}", strategy->describe());
  aggregator::RecorderOptions recorder_options;
  recorder_options.run = a.run;
  recorder_options.metrics_path = a.metrics;
  recorder_options.checkpoint_path = a.checkpoint;
  recorder_options.malicious = split_ids(a.malicious);
  recorder_options.seed = a.server.seed;
  aggregator::RoundRecorder recorder(recorder_options, eval);
  if (a.resume) FEDVAR_RETURN_IF_ERROR(recorder.resume(std::move(resume.history)));

  aggregator::Server server(a.server, resnet_state(model).tensors, *strategy);
  FEDVAR_RETURN_IF_ERROR(server.bind());
  if (!a.endpoint_file.empty()) {
    FEDVAR_RETURN_IF_ERROR(write_file_atomic(a.endpoint_file, server.endpoint() + "\n"));
  }
  stop_on_signals();
  FEDVAR_RETURN_IF_ERROR(server.run(recorder.callback()));

  result = serve_result(a, recorder.history());
  return Status::Ok();
}

}  // namespace

void register_serve(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<ServeArgs>();
  auto& s = a->server;
  s.training.lr = 0.05;
  s.training.momentum = 0.9;
  s.training.weight_decay = 5e-4;
  auto* cmd = app.add_subcommand(
      "serve", "Run the federated server: rules before, on and after aggregation");
  cmd->add_option("--data", a->data, "Data set directory (clean set and test set)")
      ->required();
  cmd->add_option("--endpoint", s.endpoint,
                  "ZeroMQ bind address (port * = any free one)");
  cmd->add_option("--endpoint-file", a->endpoint_file, "Write the bound endpoint here");
  cmd->add_option("--clean-range", a->clean_range,
                  "Rows of the train split held by the server (the rules' clean set); no "
                  "client may hold them");
  cmd->add_option("--test-range", a->test_range, "Rows of the test split to evaluate");
  cmd->add_option("--rounds", s.rounds, "Rounds")->check(CLI::Range(1, 100000));
  cmd->add_option("--min-clients", s.min_clients,
                  "Connected, joined clients to wait for before round 1")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--fraction", s.fraction, "Share of clients sampled per round")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--quorum", s.quorum, "Fewest updates that make a round")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--max-samples", s.max_samples,
                  "Most samples a client may claim, its FedAvg weight (default 1000000): "
                  "a join or update claiming more is refused. Set it to the largest "
                  "shard a client holds")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000'000}));
  cmd->add_option("--round-timeout", s.round_timeout_s, "Seconds to wait for updates");
  cmd->add_option("--join-timeout", s.join_timeout_s, "Seconds to wait for min-clients");
  cmd->add_option("--local-epochs", s.training.epochs, "Clients' local epochs")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--lr", s.training.lr, "Clients' SGD learning rate");
  cmd->add_option("--momentum", s.training.momentum, "Clients' SGD momentum")
      ->check(CLI::Range(0.0, 0.999));
  cmd->add_option("--weight-decay", s.training.weight_decay, "Clients' L2 penalty");
  cmd->add_option("--batch-size", s.training.batch_size, "Clients' mini-batch size")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--before", a->strategy.before,
                  "Before-aggregation rule, repeatable, in order: norm-clip:bound=B, "
                  "flame[:lambda=0.001], fltrust");
  cmd->add_option("--aggregate", a->strategy.aggregate,
                  "Aggregation rule: fedavg (default), median, trimmed-mean:beta=0.1, "
                  "krum:f=1, multi-krum:f=1,m=0, bulyan:f=1");
  cmd->add_option("--after,--hook", a->strategy.after,
                  "After-aggregation rule, repeatable, in order: a defense spec "
                  "(fedvar defenses), e.g. vardefense:preset=federated, or "
                  "crfl:clip=15,sigma=0.01");
  cmd->add_option("--after-rounds,--hook-rounds", a->strategy.after_rounds,
                  "Rounds the after-rules run in: all, or e.g. 10 or 5-8 or 15-");
  cmd->add_option("--init", a->init, "Initial global model (.safetensors)");
  cmd->add_option("--width", a->width, "ResNet base width of a fresh model")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--stem", a->stem, "cifar or imagenet")
      ->check(CLI::IsMember({"cifar", "imagenet"}));
  cmd->add_option("--trigger", a->trigger,
                  "Global trigger to measure ASR with (DBA: also each piece)");
  cmd->add_option("--target", a->target, "Target label of the measured backdoor");
  cmd->add_option("--malicious", a->malicious,
                  "Comma-separated ids of malicious clients (ground truth for the "
                  "metrics only)");
  cmd->add_option("--metrics", a->metrics, "Metrics file, one JSON line per round");
  cmd->add_option("--checkpoint", a->checkpoint, "Global model saved after every round");
  cmd->add_option("--run", a->run, "Run label in the metrics");
  cmd->add_flag("--resume", a->resume,
                "Continue the run recorded in --checkpoint and --metrics after its last "
                "complete round (same flags and --seed); without a checkpoint, start it");
  add_compute_flags(*cmd, a->compute);
  add_normalize_flag(*cmd, a->normalize);
  cmd->add_option("--seed", s.seed, "Seed: model init, sampling, task seeds");
  cmd->add_option("--key-file", a->key_file,
                  "File with the federation key; each client holds one derived from "
                  "it (fedvar client-key) (default: $FEDVAR_KEY)");
  cmd->callback([a, &commands] {
    commands.action =
        json_action([a](nlohmann::json& out) { return run_serve(*a, out); });
  });
}

}  // namespace fedvar::cli
