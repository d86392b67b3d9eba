// fedvar defend: the defend service. Aggregation servers in any language
// send a model over ZeroMQ and get it back purified with the report
// (service/defend_service.h; the wire format in protocol/defend_wire.h).
#include "cli/commands.h"

#include <cstdint>

#include "cli/common.h"
#include "core/file_io.h"
#include "core/log.h"
#include "service/defend_service.h"
#include "service/purifier.h"

namespace fedvar::cli {
namespace {

struct DefendArgs {
  service::ServiceOptions service;
  service::PurifierOptions purifier;
  std::string endpoint_file;
  std::string data;
  std::string split = "train";
  std::string clean_range;
  std::string key_file;
  double max_request_mb = 256;
  ComputeFlags compute;
  uint64_t seed = 0;
};

Result<service::Purifier> make_purifier(const DefendArgs& a) {
  plugins::DefenseContext base;
  FEDVAR_ASSIGN_OR_RETURN(base.device, apply_compute_flags(a.compute));
  FEDVAR_ASSIGN_OR_RETURN(base.clean, load_split_range(a.data, a.split, a.clean_range));
  base.seed = a.seed;
  base.progress = [](const std::string& line) { spdlog::info("  {}", line); };
  spdlog::info("defend: {} clean image(s) from {} ({} {}), default defense {}",
               base.clean.size(), a.data, a.split, a.clean_range, a.purifier.defense);
  return service::Purifier::create(a.purifier, std::move(base));
}

Status run_defend(DefendArgs a) {
  FEDVAR_ASSIGN_OR_RETURN(a.service.key, load_key(a.key_file, KeyRole::kFederation));
  a.service.max_request_bytes = static_cast<int64_t>(a.max_request_mb * (1 << 20));
  FEDVAR_ASSIGN_OR_RETURN(const service::Purifier purifier, make_purifier(a));
  service::DefendService defend(
      a.service, [&purifier](const protocol::RequestHeader& h, std::string_view model) {
        return purifier.run(model, h.defense, h.normalize);
      });
  FEDVAR_RETURN_IF_ERROR(defend.bind());
  if (!a.endpoint_file.empty()) {
    FEDVAR_RETURN_IF_ERROR(write_file_atomic(a.endpoint_file, defend.endpoint() + "\n"));
  }
  stop_on_signals();
  return defend.run(print_json);
}

}  // namespace

void register_defend(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<DefendArgs>();
  auto* cmd = app.add_subcommand(
      "defend",
      "Serve the defense over ZeroMQ: HMAC-signed requests with a model in, the purified "
      "model and its report out (one JSON line per reply on stdout)");
  cmd->add_option("--listen", a->service.endpoint,
                  "ZeroMQ bind address, e.g. tcp://0.0.0.0:5557 (port * = any free one)")
      ->required();
  cmd->add_option("--endpoint-file", a->endpoint_file, "Write the bound endpoint here");
  cmd->add_option("--data", a->data, "Data set directory of the clean set")->required();
  cmd->add_option("--split", a->split, "train or test")
      ->check(CLI::IsMember({"train", "test"}));
  cmd->add_option("--clean-range", a->clean_range,
                  "The clean rows, A:B (e.g. -1000:), loaded once at start")
      ->required();
  cmd->add_option(
      "--defense", a->purifier.defense,
      "Default defense spec, NAME[:key=value,...]; a request may name another");
  cmd->add_option(
      "--normalize", a->purifier.normalize,
      "Input normalization for a request that gives none and a model whose "
      "metadata has none: MEAN,STD per channel, or 'estimate' (from the clean "
      "set); default: none (x/255)");
  cmd->add_option(
      "--key-file", a->key_file,
      "File with the HMAC key requests are signed with (default: $FEDVAR_KEY)");
  cmd->add_option("--queue", a->service.queue,
                  "Requests that may wait behind the one running; more are answered busy")
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--max-request-mb", a->max_request_mb,
                  "Largest request accepted (MiB); a larger one is refused unread")
      ->check(CLI::Range(0.01, 4096.0));
  add_compute_flags(*cmd, a->compute);
  cmd->add_option("--seed", a->seed, "Seed for the holdout split and shuffling");
  cmd->callback([a, &commands] {
    commands.action = [a] {
      init_logging();
      try {
        const Status st = run_defend(*a);
        return st.ok() ? 0 : fail(st);
      } catch (const std::exception& e) {
        return fail(status_from_exception("defend", e));
      }
    };
  });
}

}  // namespace fedvar::cli
