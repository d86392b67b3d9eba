// fedvar defend-request: sends a model file to a defend service, verifies
// the reply and writes the purified model; the report goes to stdout.
#include "cli/commands.h"

#include <cstdint>

#include "cli/common.h"
#include "core/file_io.h"
#include "core/log.h"
#include "core/safetensors.h"
#include "service/defend_client.h"

namespace fedvar::cli {
namespace {

struct DefendRequestArgs {
  std::string endpoint;
  std::string key_file;
  std::string model;
  std::string out;
  std::string defense;
  std::string normalize;
  double timeout_s = 600;
};

Status run_defend_request(const DefendRequestArgs& a, nlohmann::json& report) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string key,
                          load_key(a.key_file, KeyRole::kFederation));
  service::RemoteRequest request;
  // The service refuses requests over 256 MiB by default (defend_service.h).
  FEDVAR_ASSIGN_OR_RETURN(request.model, read_regular_file(a.model, uint64_t{256} << 20));
  if (!a.defense.empty()) request.defense = a.defense;
  if (!a.normalize.empty()) request.normalize = a.normalize;
  spdlog::info("defend-request: {} ({} bytes) to {}", a.model, request.model.size(),
               a.endpoint);
  FEDVAR_ASSIGN_OR_RETURN(service::RemoteReply reply,
                          service::request_purify(a.endpoint, key, request, a.timeout_s));
  const auto parsed = parse_safetensors(reply.model);  // authenticated; checked anyway
  if (!parsed.ok()) return parsed.status().with_context("the purified model");
  try {
    report = nlohmann::json::parse(reply.report);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("the reply's report is not JSON: ") +
                                   e.what());
  }
  report["model"] = a.model;
  report["out"] = a.out;
  return write_file_atomic(a.out, reply.model);
}

}  // namespace

void register_defend_request(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<DefendRequestArgs>();
  auto* cmd = app.add_subcommand(
      "defend-request",
      "Send a model to a defend service and write the purified model (report on stdout)");
  cmd->add_option("--connect", a->endpoint, "The service's address, e.g. tcp://HOST:5557")
      ->required();
  cmd->add_option("--key-file", a->key_file,
                  "File with the service's HMAC key (default: $FEDVAR_KEY)");
  cmd->add_option("--model", a->model, "Input model (.safetensors)")->required();
  cmd->add_option("--out", a->out, "Purified model, written atomically")->required();
  cmd->add_option("--defense", a->defense,
                  "Defense spec NAME[:key=value,...] (default: the service's)");
  cmd->add_option("--normalize", a->normalize,
                  "MEAN,STD per channel or 'estimate' (default: the model file's, else "
                  "the service's)");
  cmd->add_option("--timeout", a->timeout_s, "Seconds to wait for the reply")
      ->check(CLI::Range(0.001, 1e6));
  cmd->callback([a, &commands] {
    commands.action =
        json_action([a](nlohmann::json& out) { return run_defend_request(*a, out); });
  });
}

}  // namespace fedvar::cli
