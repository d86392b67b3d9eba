// fedvar client-key: derives one client's key from the federation key, so
// that each client holds only its own (protocol/auth.h).
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/file_io.h"
#include "protocol/auth.h"

namespace fedvar::cli {
namespace {

struct ClientKeyArgs {
  std::string client_id;
  std::string out;
  std::string key_file;
};

Status run_client_key(const ClientKeyArgs& a, nlohmann::json& result) {
  FEDVAR_ASSIGN_OR_RETURN(auto federation_key,
                          load_key(a.key_file, KeyRole::kFederation));
  FEDVAR_ASSIGN_OR_RETURN(auto key,
                          protocol::derive_client_key(federation_key, a.client_id));
  result = {{"client_id", a.client_id}};
  if (a.out.empty()) {
    result["key"] = key;
    return Status::Ok();
  }
  umask(077);  // a key file is readable by its owner only
  FEDVAR_RETURN_IF_ERROR(write_file_atomic(a.out, key + "\n"));
  result["out"] = a.out;
  return Status::Ok();
}

}  // namespace

void register_client_key(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<ClientKeyArgs>();
  auto* cmd = app.add_subcommand(
      "client-key", "Derive a client's key from the federation key (for fedvar client)");
  cmd->add_option("--id", a->client_id, "The client's id (as given to fedvar client)")
      ->required();
  cmd->add_option("--out", a->out, "Key file to write (default: print it in the JSON)");
  cmd->add_option("--key-file", a->key_file,
                  "File with the federation key (default: $FEDVAR_KEY)");
  cmd->callback([a, &commands] {
    commands.action =
        json_action([a](nlohmann::json& out) { return run_client_key(*a, out); });
  });
}

}  // namespace fedvar::cli
