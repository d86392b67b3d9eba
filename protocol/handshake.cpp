#include "protocol/handshake.h"

#include <utility>

#include "protocol/nonce.h"

namespace fedvar::protocol {

Result<std::unique_ptr<Handshake>> Handshake::start() {
  FEDVAR_ASSIGN_OR_RETURN(std::string run_id, random_bytes(kRunIdBytes));
  return std::unique_ptr<Handshake>(new Handshake(std::move(run_id)));
}

Result<Challenge> Handshake::challenge(const std::string& identity) {
  const auto it = nonces_.find(identity);
  if (it != nonces_.end()) return Challenge{run_id_, it->second};
  FEDVAR_ASSIGN_OR_RETURN(std::string nonce, random_bytes(kNonceBytes));
  nonces_[identity] = nonce;
  return Challenge{run_id_, std::move(nonce)};
}

Status Handshake::admit(const std::string& identity, const Join& join) {
  const auto it = nonces_.find(identity);
  if (it == nonces_.end()) {
    return Status::InvalidArgument(
        "join answers no challenge sent to this connection (send a hello first)");
  }
  const std::string nonce = std::move(it->second);
  nonces_.erase(it);
  if (join.run_id != run_id_) {
    return Status::InvalidArgument("join is for another run of the server");
  }
  if (join.nonce != nonce) {
    return Status::InvalidArgument(
        "join signs a nonce that is not the one last sent to this connection");
  }
  return Status::Ok();
}

}  // namespace fedvar::protocol
