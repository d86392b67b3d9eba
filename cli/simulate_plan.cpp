#include "cli/simulate_plan.h"

#include <cctype>
#include <cstdint>

#include "core/file_io.h"
#include "simulate/process_group.h"

namespace fedvar::cli {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    SimulateArgs, data, out, clients, attackers, attack, target, ratio, attack_rounds,
    hook_rounds, scale, rounds, hooks, before, aggregate, compare, clean_baseline,
    partition, pool_size, clean_size, test_size, width, local_epochs, lr, batch_size,
    round_timeout, seed, device, init)

namespace {

// A spec as part of a file name: "vardefense-alpha10" for
// "vardefense:alpha=10" (unique per spec).
std::string file_part(const std::string& spec) {
  std::string name;
  for (char c : spec) {
    if (c == ':' || c == ',') {
      name += '-';
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
               c == '+') {
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

}  // namespace

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

std::string client_id(const SimulateArgs& a, int index, bool attacked) {
  return (attacked && index < a.attackers ? "attacker-" : "client-") +
         std::to_string(index);
}

namespace {

// The trigger attacker `index` stamps: its DBA piece, or the whole trigger.
std::string attacker_trigger(const TriggerSpec& global, int index) {
  const auto pieces = dba_pieces(global);
  if (pieces.empty()) return global.to_string();
  return pieces[static_cast<size_t>(index) % pieces.size()].to_string();
}

}  // namespace

std::string run_path(const std::string& dir, const RunPlan& run,
                     const std::string& suffix) {
  return dir + "/" + run.name + "." + suffix;
}

std::string settings_path(const std::string& out) { return out + "/simulate.json"; }

Status save_settings(const SimulateArgs& a) {
  return write_file_atomic(settings_path(a.out), nlohmann::json(a).dump(2) + "\n");
}

Result<SimulateArgs> load_settings(const std::string& out) {
  const std::string path = settings_path(out);
  FEDVAR_ASSIGN_OR_RETURN(const std::string text, read_regular_file(path, 1 << 20));
  try {
    SimulateArgs a = nlohmann::json::parse(text).get<SimulateArgs>();
    a.out = out;  // wherever the directory is now
    return a;
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(path +
                                   ": not the settings of a simulation: " + e.what());
  }
}

std::vector<std::string> server_argv(const SimulateArgs& a, const RunPlan& run,
                                     const std::string& dir, const std::string& norm,
                                     const TriggerSpec& trigger, int64_t max_samples,
                                     bool resume) {
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
                                   run_path(dir, run, "endpoint"),
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
                                   run_path(dir, run, "jsonl"),
                                   "--checkpoint",
                                   run_path(dir, run, "safetensors"),
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
  if (resume) argv.push_back("--resume");
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

}  // namespace fedvar::cli
