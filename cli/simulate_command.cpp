// fedvar simulate: the main job. Starts one `fedvar serve` and N `fedvar
// client` processes on loopback (real processes, real TCP) for each run
// (with the hook, and with --compare without it), then prints a table of the
// last round and draws ACC/ASR per round as an SVG.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/normalization.h"
#include "core/partition.h"
#include "core/stop.h"
#include "core/trigger.h"
#include "protocol/auth.h"
#include "simulate/process_group.h"
#include "simulate/summary.h"

namespace fedvar::cli {
namespace {

namespace fs = std::filesystem;

struct SimulateArgs {
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out = "out/simulate";
  int clients = 10;
  int attackers = 4;
  std::string attack = "dba:pieces=4";
  // Class 1 (Fashion-MNIST's trouser) looks like no other class, so ASR
  // measures the backdoor; with class 0 a federation without attackers
  // already sends 5-6 % of triggered images there (docs/results.md).
  int64_t target = 1;
  double ratio = 0.25;
  std::string attack_rounds = "all";
  std::string hook_rounds = "all";
  double scale = 1.0;
  int rounds = 10;
  // The hook recipe measured best in the federation (docs/vardefense.md).
  std::vector<std::string> hooks = {"vardefense:preset=federated"};
  std::vector<std::string> before;   // of the defended runs
  std::string aggregate = "fedavg";  // of the defended runs
  bool compare = false;
  bool clean_baseline = false;
  std::string partition = "dirichlet:0.5";
  int64_t pool_size = 10000;
  int64_t clean_size = 1000;
  int64_t test_size = 2000;
  int64_t width = 8;
  int local_epochs = 1;
  double lr = 0.05;
  int64_t batch_size = 64;
  double round_timeout = 600;
  uint64_t seed = 0;
  std::string device = "auto";
  std::string init;  // every run starts from this model ("" = a fresh seeded one)
};

// One federation: a label, whether attackers take part, and its rules.
struct RunPlan {
  std::string name;
  bool attacked = true;
  bool defended = false;  // runs --before and --aggregate
  std::string hook;       // the after-rule, "" = none
};

// A spec as part of a file name: "vardefense-alpha10" for
// "vardefense:alpha=10" (unique per spec).
std::string file_part(const std::string& spec) {
  std::string name;
  for (char c : spec) {
    if (c == ':' || c == ',') {
      name += '-';
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') {
      name += c;
    }
  }
  return name;
}

// A defended run's name: its rules in phase order, e.g. "flame+median+vardefense".
std::string run_name(const SimulateArgs& a, const std::string& hook) {
  std::string name;
  for (const auto& b : a.before) name += (name.empty() ? "" : "+") + file_part(b);
  if (a.aggregate != "fedavg") name += (name.empty() ? "" : "+") + file_part(a.aggregate);
  if (!hook.empty()) name += (name.empty() ? "" : "+") + file_part(hook);
  return name;
}

std::vector<RunPlan> plan_runs(const SimulateArgs& a) {
  std::vector<RunPlan> runs;
  if (a.clean_baseline) runs.push_back({"no-attack", false, false, ""});
  std::vector<std::string> hooks;
  for (const auto& h : a.hooks) {
    if (!h.empty() && h != "none") hooks.push_back(h);
  }
  const bool rules = !a.before.empty() || a.aggregate != "fedavg";
  if (hooks.empty() && rules) hooks.push_back("");
  if (a.compare || hooks.empty()) runs.push_back({"no-defense", true, false, ""});
  for (const auto& h : hooks) runs.push_back({run_name(a, h), true, true, h});
  return runs;
}

std::string random_key() {
  std::random_device device;
  std::string key;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) key += hex[device() % 16];
  return key;
}

std::string client_id(const SimulateArgs& a, int index, bool attacked) {
  return (attacked && index < a.attackers ? "attacker-" : "client-") +
         std::to_string(index);
}

// The trigger attacker `index` stamps: its DBA piece, or the whole trigger.
std::string attacker_trigger(const TriggerSpec& global, int index) {
  const auto pieces = dba_pieces(global);
  if (pieces.empty()) return global.to_string();
  return pieces[static_cast<size_t>(index) % pieces.size()].to_string();
}

// The largest shard a client gets (each client makes the same partition of
// the pool): the server's --max-samples, so that no client can claim more.
Result<int64_t> largest_shard(const SimulateArgs& a, const Dataset& pool) {
  FEDVAR_ASSIGN_OR_RETURN(auto partition,
                          partition_by_spec(a.partition, pool.labels, a.clients, a.seed));
  size_t largest = 1;
  for (const auto& shard : partition) largest = std::max(largest, shard.size());
  return static_cast<int64_t>(largest);
}

std::vector<std::string> server_argv(const SimulateArgs& a, const RunPlan& run,
                                     const std::string& dir, const std::string& norm,
                                     const TriggerSpec& trigger, int64_t max_samples) {
  std::string malicious;
  for (int i = 0; run.attacked && i < a.attackers; ++i) {
    malicious += (i ? "," : "") + client_id(a, i, true);
  }
  std::vector<std::string> argv = {simulate::self_executable(),
                                   "serve",
                                   "--data",
                                   a.data,
                                   "--endpoint",
                                   "tcp://127.0.0.1:*",
                                   "--endpoint-file",
                                   dir + "/" + run.name + ".endpoint",
                                   "--clean-range",
                                   std::to_string(-a.clean_size) + ":",
                                   "--test-range",
                                   "0:" + std::to_string(a.test_size),
                                   "--rounds",
                                   std::to_string(a.rounds),
                                   "--min-clients",
                                   std::to_string(a.clients),
                                   "--round-timeout",
                                   std::to_string(a.round_timeout),
                                   "--local-epochs",
                                   std::to_string(a.local_epochs),
                                   "--lr",
                                   std::to_string(a.lr),
                                   "--batch-size",
                                   std::to_string(a.batch_size),
                                   "--width",
                                   std::to_string(a.width),
                                   "--trigger",
                                   trigger.to_string(),
                                   "--target",
                                   std::to_string(a.target),
                                   "--metrics",
                                   dir + "/" + run.name + ".jsonl",
                                   "--checkpoint",
                                   dir + "/" + run.name + ".safetensors",
                                   "--run",
                                   run.name,
                                   "--device",
                                   a.device,
                                   "--threads",
                                   "1",
                                   "--normalize",
                                   norm,
                                   "--seed",
                                   std::to_string(a.seed),
                                   "--max-samples",
                                   std::to_string(max_samples)};
  if (!malicious.empty()) argv.insert(argv.end(), {"--malicious", malicious});
  if (!a.init.empty()) argv.insert(argv.end(), {"--init", a.init});
  if (run.defended) {
    for (const auto& b : a.before) argv.insert(argv.end(), {"--before", b});
    argv.insert(argv.end(), {"--aggregate", a.aggregate});
  }
  if (!run.hook.empty()) {
    argv.insert(argv.end(), {"--after", run.hook, "--after-rounds", a.hook_rounds});
  }
  return argv;
}

std::vector<std::string> client_argv(const SimulateArgs& a, const RunPlan& run, int index,
                                     const std::string& endpoint, const std::string& norm,
                                     const TriggerSpec& trigger) {
  std::vector<std::string> argv = {simulate::self_executable(),
                                   "client",
                                   "--endpoint",
                                   endpoint,
                                   "--id",
                                   client_id(a, index, run.attacked),
                                   "--data",
                                   a.data,
                                   "--pool",
                                   "0:" + std::to_string(a.pool_size),
                                   "--clients",
                                   std::to_string(a.clients),
                                   "--index",
                                   std::to_string(index),
                                   "--partition",
                                   a.partition,
                                   "--partition-seed",
                                   std::to_string(a.seed),
                                   "--normalize",
                                   norm,
                                   "--device",
                                   a.device == "auto" ? "cpu" : a.device,
                                   "--threads",
                                   "1",
                                   "--seed",
                                   std::to_string(index)};
  if (run.attacked && index < a.attackers) {
    argv.insert(argv.end(),
                {"--poison", attacker_trigger(trigger, index), "--target",
                 std::to_string(a.target), "--ratio", std::to_string(a.ratio),
                 "--attack-rounds", a.attack_rounds, "--scale", std::to_string(a.scale)});
  }
  return argv;
}

Result<std::string> wait_for_endpoint(simulate::ProcessGroup& group, pid_t server,
                                      const std::string& path) {
  for (int i = 0; i < 6000 && !stop_requested(); ++i) {
    auto text = read_file(path);
    if (text.ok() && !text.value().empty()) {
      std::string endpoint = text.value();
      while (!endpoint.empty() && endpoint.back() == '\n') endpoint.pop_back();
      return endpoint;
    }
    if (!group.running(server)) return Status::Unavailable("the server exited at start");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Unavailable("the server did not start listening");
}

// One federation, start to end; its metrics are in DIR/NAME.jsonl.
// The server gets the federation key, each client only its own (auth.h).
Status run_federation(const SimulateArgs& a, const RunPlan& run, const std::string& norm,
                      const TriggerSpec& trigger, const std::string& key,
                      int64_t max_samples) {
  const std::string logs = a.out + "/logs";
  fs::remove(a.out + "/" + run.name + ".endpoint");
  spdlog::info("simulate: run '{}': {} clients ({} attackers), {} rounds, hook {}",
               run.name, a.clients, run.attacked ? a.attackers : 0, a.rounds,
               run.hook.empty() ? "none" : run.hook);
  simulate::ProcessGroup group;
  FEDVAR_ASSIGN_OR_RETURN(
      pid_t server,
      group.spawn(server_argv(a, run, a.out, norm, trigger, max_samples),
                  logs + "/" + run.name + "-server.json", "", {"FEDVAR_KEY=" + key}));
  FEDVAR_ASSIGN_OR_RETURN(
      std::string endpoint,
      wait_for_endpoint(group, server, a.out + "/" + run.name + ".endpoint"));
  for (int i = 0; i < a.clients; ++i) {
    const std::string id = client_id(a, i, run.attacked);
    FEDVAR_ASSIGN_OR_RETURN(auto client_key, protocol::derive_client_key(key, id));
    const std::string log = logs + "/" + run.name + "-" + id;
    FEDVAR_RETURN_IF_ERROR(group
                               .spawn(client_argv(a, run, i, endpoint, norm, trigger),
                                      log + ".json", log + ".log",
                                      {"FEDVAR_CLIENT_KEY=" + client_key})
                               .status());
  }
  FEDVAR_ASSIGN_OR_RETURN(int code, group.wait(server, -1, stop_flag()));
  if (code != 0) {
    return Status::Internal("the server of run '" + run.name + "' exited with code " +
                            std::to_string(code) + " (see its lines above)");
  }
  return Status::Ok();  // ~ProcessGroup stops any client that is still up
}

Status run_simulate(const SimulateArgs& a, nlohmann::json& result) {
  if (a.attackers < 0 || a.attackers > a.clients) {
    return Status::InvalidArgument("--attackers must be in 0..--clients");
  }
  FEDVAR_ASSIGN_OR_RETURN(auto trigger, parse_trigger(a.attack));
  FEDVAR_ASSIGN_OR_RETURN(auto train, load_dataset(a.data, "train"));
  // The clients' pool (the first rows) and the server's clean set (the last
  // rows) must not overlap: the defender's data is its own.
  if (a.pool_size + a.clean_size > train.size()) {
    return Status::InvalidArgument(
        "--pool-size plus --clean-size (" + std::to_string(a.pool_size + a.clean_size) +
        ") exceed the train split's " + std::to_string(train.size()) + " images");
  }
  const Dataset pool = train.slice(0, a.pool_size);
  FEDVAR_RETURN_IF_ERROR(
      check_trigger_fits(trigger, pool.images.size(2), pool.images.size(3)));
  std::error_code ec;
  fs::create_directories(a.out + "/logs", ec);
  if (ec) return Status::InvalidArgument("cannot create " + a.out + ": " + ec.message());
  // The federation trains from scratch: one normalization, estimated from the
  // clients' pool, given to the server and every client.
  const std::string norm = Normalization::estimate(pool).to_string();
  FEDVAR_ASSIGN_OR_RETURN(const int64_t max_samples, largest_shard(a, pool));
  const std::string key = random_key();
  stop_on_signals();
  std::vector<std::string> names;
  for (const RunPlan& run : plan_runs(a)) {
    FEDVAR_RETURN_IF_ERROR(run_federation(a, run, norm, trigger, key, max_samples));
    names.push_back(run.name);
  }
  return simulate::report_simulation(a.out, names, result);
}

}  // namespace

void register_simulate(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "Run a federated simulation with attackers: 1 server + N client processes");
  cmd->add_option("--data", a->data, "Data set directory");
  cmd->add_option("--out", a->out, "Output directory: metrics, checkpoints, logs, plot");
  cmd->add_option("--clients", a->clients, "Clients")->check(CLI::Range(1, 1000));
  cmd->add_option("--attackers", a->attackers, "How many of them are malicious");
  cmd->add_option("--attack", a->attack,
                  "Global trigger; with dba each attacker stamps its own piece");
  cmd->add_option(
      "--target", a->target,
      "Attackers' target label (on Fashion-MNIST 1, trouser, resembles no other "
      "class: an attack-free model's ASR is ~0)");
  cmd->add_option("--ratio", a->ratio, "Share of each attacker batch poisoned")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--attack-rounds", a->attack_rounds,
                  "Rounds attacked: all, 1,3,5-8, 10-");
  cmd->add_option("--scale", a->scale, "Attackers' model replacement factor");
  cmd->add_option("--rounds", a->rounds, "Rounds")->check(CLI::Range(1, 100000));
  cmd->add_option("--before", a->before,
                  "Before-aggregation rule of the defended runs, repeatable, in order: "
                  "norm-clip:bound=B, flame, fltrust");
  cmd->add_option("--aggregate", a->aggregate,
                  "Aggregation rule of the defended runs: fedavg, median, "
                  "trimmed-mean:beta=0.1, krum:f=1, multi-krum:f=1,m=0, bulyan:f=1");
  cmd->add_option("--after,--hook", a->hooks,
                  "After-aggregation rule (a defense spec or crfl); repeat for one run "
                  "per rule; none = no after-rule (default vardefense:preset=federated)");
  cmd->add_option("--after-rounds,--hook-rounds", a->hook_rounds,
                  "Rounds the after-rule runs in: all, or e.g. 10 or 8-");
  cmd->add_flag("--compare", a->compare, "Also run plain FedAvg without any rule");
  cmd->add_flag("--clean-baseline", a->clean_baseline,
                "Also run without attackers and without any rule");
  cmd->add_option("--partition", a->partition, "iid or dirichlet:BETA");
  cmd->add_option("--pool-size", a->pool_size, "Train images shared out to the clients")
      ->check(CLI::Range(1, 10000000));
  cmd->add_option("--clean-size", a->clean_size, "Server's clean images (end of train)")
      ->check(CLI::Range(1, 10000000));
  cmd->add_option("--test-size", a->test_size, "Test images evaluated each round")
      ->check(CLI::Range(1, 10000000));
  cmd->add_option("--width", a->width, "ResNet18 base width (64 = torchvision)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--local-epochs", a->local_epochs, "Clients' local epochs")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--lr", a->lr, "Clients' SGD learning rate");
  cmd->add_option("--batch-size", a->batch_size, "Clients' mini-batch size")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--round-timeout", a->round_timeout, "Seconds to wait for updates");
  cmd->add_option("--seed", a->seed, "Seed of the whole simulation");
  cmd->add_option(
         "--init", a->init,
         "Start every run from this model (.safetensors; e.g. a run's checkpoint)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--device", a->device,
                  "Device of the server and the clients: auto, cpu, cuda");
  cmd->callback([a, &commands] {
    // The table is the result a person reads; summary.json has it as JSON.
    commands.action = [a] {
      init_logging();
      nlohmann::json summary;
      Status status = run_simulate(*a, summary);
      if (!status.ok()) return fail(status);
      std::cout << summary["table"].get<std::string>()
                << "plot: " << summary["plot"].get<std::string>()
                << ", summary: " << a->out << "/summary.json" << std::endl;
      return 0;
    };
  });
}

}  // namespace fedvar::cli
