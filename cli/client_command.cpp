// fedvar client: one simulated federated client (honest or malicious) as its
// own process, training on its shard of the clients' pool.
#include "cli/commands.h"

#include <cstdint>

#include "cli/common.h"
#include "client_sim/client.h"
#include "core/log.h"
#include "core/partition.h"

namespace fedvar::cli {
namespace {

struct ClientArgs {
  client_sim::ClientOptions client;
  std::string data;
  std::string pool;
  int clients = 1;
  int index = 0;
  std::string partition = "iid";
  uint64_t partition_seed = 0;
  std::string poison;
  int64_t target = 0;
  double ratio = 0.05;
  std::string attack_rounds = "all";
  double scale = 1.0;
  ComputeFlags compute;
  std::string normalize;
  std::string key_file;
};

// The shard of client `index`: its part of the IID or Dirichlet partition of
// the pool ("iid" or "dirichlet:BETA").
Result<Dataset> client_shard(const ClientArgs& a, const Dataset& pool) {
  if (a.index < 0 || a.index >= a.clients) {
    return Status::InvalidArgument("--index must be in 0.." +
                                   std::to_string(a.clients - 1));
  }
  FEDVAR_ASSIGN_OR_RETURN(
      auto partition,
      partition_by_spec(a.partition, pool.labels, a.clients, a.partition_seed));
  return pool.subset(partition[a.index]);
}

Status run_client_command(ClientArgs a, nlohmann::json& result) {
  FEDVAR_ASSIGN_OR_RETURN(a.client.key, load_key(a.key_file, KeyRole::kClient));
  FEDVAR_ASSIGN_OR_RETURN(a.client.device, apply_compute_flags(a.compute));
  FEDVAR_ASSIGN_OR_RETURN(auto pool, load_split_range(a.data, "train", a.pool));
  FEDVAR_ASSIGN_OR_RETURN(auto shard, client_shard(a, pool));
  FEDVAR_ASSIGN_OR_RETURN(a.client.normalization,
                          resolve_normalization(a.normalize, std::nullopt, shard));
  if (!a.poison.empty()) {
    client_sim::Attack attack;
    FEDVAR_ASSIGN_OR_RETURN(attack.trigger, parse_trigger(a.poison));
    FEDVAR_RETURN_IF_ERROR(
        check_trigger_fits(attack.trigger, shard.images.size(2), shard.images.size(3)));
    if (a.target < 0 || a.target >= shard.num_classes) {
      return Status::InvalidArgument("--target must be a class in 0.." +
                                     std::to_string(shard.num_classes - 1));
    }
    attack.target = a.target;
    attack.ratio = a.ratio;
    attack.scale = a.scale;
    auto rounds = RoundSchedule::parse(a.attack_rounds);
    if (!rounds.ok()) return rounds.status().with_context("--attack-rounds");
    attack.rounds = rounds.value();
    a.client.attack = attack;
  }
  if (a.client.client_id.empty())
    a.client.client_id = "client-" + std::to_string(a.index);
  stop_on_signals();
  FEDVAR_RETURN_IF_ERROR(client_sim::run_client(a.client, shard));
  result = {{"client", a.client.client_id},
            {"samples", shard.size()},
            {"malicious", a.client.attack.has_value()}};
  return Status::Ok();
}

}  // namespace

void register_client(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<ClientArgs>();
  auto* cmd = app.add_subcommand("client", "Run one simulated federated client");
  cmd->add_option("--endpoint", a->client.endpoint, "The server's endpoint")->required();
  cmd->add_option("--id", a->client.client_id, "Client id (default client-INDEX)");
  cmd->add_option("--data", a->data, "Data set directory")->required();
  cmd->add_option("--pool", a->pool,
                  "Rows of the train split shared out among the clients, A:B (must "
                  "not overlap the server's clean range)");
  cmd->add_option("--clients", a->clients, "Number of clients the pool is split among")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--index", a->index, "This client's shard, 0..clients-1");
  cmd->add_option("--partition", a->partition, "iid or dirichlet:BETA (label skew)");
  cmd->add_option("--partition-seed", a->partition_seed,
                  "Seed of the partition (the same for every client)");
  cmd->add_option(
      "--poison", a->poison,
      "Malicious: trigger spec stamped on its batches, e.g. dba:pieces=4,piece=0");
  cmd->add_option("--target", a->target, "Malicious: the label it wants");
  cmd->add_option("--ratio", a->ratio, "Malicious: share of each batch poisoned")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--attack-rounds", a->attack_rounds,
                  "Malicious: rounds it poisons, all or e.g. 1,3,5-8 or 10-");
  cmd->add_option("--scale", a->scale,
                  "Malicious: model replacement factor, update = global + "
                  "scale*(local-global)");
  cmd->add_option("--seed", a->client.seed, "Mixed into each round's shuffling seed");
  cmd->add_option("--idle-timeout", a->client.idle_timeout_s,
                  "Exit when the server is silent this many seconds");
  add_compute_flags(*cmd, a->compute);
  add_normalize_flag(*cmd, a->normalize);
  cmd->add_option("--key-file", a->key_file,
                  "File with this client's key, from fedvar client-key --id ID "
                  "(default: $FEDVAR_CLIENT_KEY)");
  cmd->callback([a, &commands] {
    commands.action =
        json_action([a](nlohmann::json& out) { return run_client_command(*a, out); });
  });
}

}  // namespace fedvar::cli
