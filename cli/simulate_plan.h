// What `fedvar simulate` starts: its settings (kept in OUT/simulate.json so
// that `--resume OUT` continues with them), the federations they make (one
// per after-rule, and the baselines asked for) and the command lines of each
// federation's server and clients.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/trigger.h"

namespace fedvar::cli {

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

// The settings file of a simulation: OUT/simulate.json.
std::string settings_path(const std::string& out);
// Writes `a` to its settings file (atomically).
Status save_settings(const SimulateArgs& a);
// The settings a simulation in `out` was started with; kNotFound without a
// settings file, kInvalidArgument when it does not parse.
Result<SimulateArgs> load_settings(const std::string& out);

// The federations of a simulation, in the order they run.
std::vector<RunPlan> plan_runs(const SimulateArgs& a);
// DIR/NAME.SUFFIX: where federation `run` keeps its metrics ("jsonl"), its
// checkpoint ("safetensors") and its endpoint ("endpoint").
std::string run_path(const std::string& dir, const RunPlan& run,
                     const std::string& suffix);
// "attacker-I" or "client-I".
std::string client_id(const SimulateArgs& a, int index, bool attacked);

// The server of federation `run`: `fedvar serve` writing its endpoint,
// metrics and checkpoint into `dir` (run_path); with `resume`, continuing the
// run recorded there.
std::vector<std::string> server_argv(const SimulateArgs& a, const RunPlan& run,
                                     const std::string& dir, const std::string& norm,
                                     const TriggerSpec& trigger, int64_t max_samples,
                                     bool resume);
// Client `index` of federation `run` (an attacker if index < --attackers).
std::vector<std::string> client_argv(const SimulateArgs& a, const RunPlan& run, int index,
                                     const std::string& endpoint, const std::string& norm,
                                     const TriggerSpec& trigger);

}  // namespace fedvar::cli
