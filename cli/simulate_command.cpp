// fedvar simulate: the main job. Starts one `fedvar serve` and N `fedvar
// client` processes on loopback (real processes, real TCP) for each run
// (with the hook, and with --compare without it), then prints a table of the
// last round and draws ACC/ASR per round as an SVG.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "aggregator/resume.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/simulate_plan.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/normalization.h"
#include "core/partition.h"
#include "core/stop.h"
#include "protocol/auth.h"
#include "simulate/process_group.h"
#include "simulate/summary.h"

namespace fedvar::cli {
namespace {

namespace fs = std::filesystem;

std::string random_key() {
  std::random_device device;
  std::string key;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) key += hex[device() % 16];
  return key;
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

Result<std::string> wait_for_endpoint(simulate::ProcessGroup& group, pid_t server,
                                      const std::string& path) {
  for (int i = 0; i < 6000 && !stop_requested(); ++i) {
    auto text = read_file(path, /*max_bytes=*/4096);
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

// With `resume`: whether federation `run` is already complete, said why.
Result<bool> run_complete(const SimulateArgs& a, const RunPlan& run) {
  FEDVAR_ASSIGN_OR_RETURN(
      auto point, aggregator::read_resume_point(run_path(a.out, run, "safetensors"),
                                                run_path(a.out, run, "jsonl"), a.seed));
  if (point.last_round >= a.rounds) {
    spdlog::info("simulate: run '{}' is complete ({} rounds)", run.name,
                 point.last_round);
    return true;
  }
  if (point.last_round > 0) {
    spdlog::info("simulate: run '{}' resumes after round {}", run.name, point.last_round);
  }
  return false;
}

// One federation, start to end (with `resume`, from where it stopped); its
// metrics are in DIR/NAME.jsonl. The server gets the federation key, each
// client only its own (auth.h).
Status run_federation(const SimulateArgs& a, const RunPlan& run, const std::string& norm,
                      const TriggerSpec& trigger, const std::string& key,
                      int64_t max_samples, bool resume) {
  if (resume) {
    FEDVAR_ASSIGN_OR_RETURN(const bool complete, run_complete(a, run));
    if (complete) return Status::Ok();
  }
  const std::string logs = a.out + "/logs";
  fs::remove(run_path(a.out, run, "endpoint"));
  spdlog::info("simulate: run '{}': {} clients ({} attackers), {} rounds, hook {}",
               run.name, a.clients, run.attacked ? a.attackers : 0, a.rounds,
               run.hook.empty() ? "none" : run.hook);
  simulate::ProcessGroup group;
  FEDVAR_ASSIGN_OR_RETURN(
      pid_t server,
      group.spawn(server_argv(a, run, a.out, norm, trigger, max_samples, resume),
                  logs + "/" + run.name + "-server.json", "", {"FEDVAR_KEY=" + key}));
  FEDVAR_ASSIGN_OR_RETURN(
      std::string endpoint,
      wait_for_endpoint(group, server, run_path(a.out, run, "endpoint")));
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

// With `resume`, `a` are the settings the simulation in a.out was started
// with: complete runs are kept, the one that stopped goes on, the rest start.
Status run_simulate(const SimulateArgs& a, bool resume, nlohmann::json& result) {
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
  if (!resume) FEDVAR_RETURN_IF_ERROR(save_settings(a));
  // The federation trains from scratch: one normalization, estimated from the
  // clients' pool, given to the server and every client.
  const std::string norm = Normalization::estimate(pool).to_string();
  FEDVAR_ASSIGN_OR_RETURN(const int64_t max_samples, largest_shard(a, pool));
  const std::string key = random_key();
  stop_on_signals();
  std::vector<std::string> names;
  for (const RunPlan& run : plan_runs(a)) {
    FEDVAR_RETURN_IF_ERROR(
        run_federation(a, run, norm, trigger, key, max_samples, resume));
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
  auto resume_dir = std::make_shared<std::string>();
  auto* resume = cmd->add_option("--resume", *resume_dir,
                                 "Continue the simulation in DIR (its --out) with the "
                                 "settings it was started with, after each run's last "
                                 "complete round; takes no other option");
  cmd->callback([a, resume_dir, resume, cmd, &commands] {
    std::string others;  // options given with --resume
    for (const CLI::Option* option : cmd->get_options()) {
      if (option != resume && option->count() > 0) others += " " + option->get_name();
    }
    // The table is the result a person reads; summary.json has it as JSON.
    commands.action = [a, resume_dir, others] {
      init_logging();
      nlohmann::json summary;
      const bool resuming = !resume_dir->empty();
      if (resuming && !others.empty()) {
        return fail(Status::InvalidArgument(
            "--resume takes the settings the simulation was started with; drop" +
            others));
      }
      if (resuming) {
        auto settings = load_settings(*resume_dir);
        if (!settings.ok()) return fail(settings.status());
        *a = std::move(settings).value();
      }
      Status status = run_simulate(*a, resuming, summary);
      if (!status.ok()) return fail(status);
      std::cout << summary["table"].get<std::string>()
                << "plot: " << summary["plot"].get<std::string>()
                << ", summary: " << a->out << "/summary.json" << std::endl;
      return 0;
    };
  });
}

}  // namespace fedvar::cli
