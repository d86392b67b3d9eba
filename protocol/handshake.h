// The server's side of the join handshake. Anyone may ask for a challenge
// (hello); the server answers with its run id and a nonce fresh for that
// connection, and admits a join only if it signs both: so a join recorded on
// one connection, or in another run, is refused, and a client's slot moves
// only for someone who holds its key now. A join's tag is verified by
// open_message before it gets here. Not thread-safe: one server loop owns it.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "protocol/messages.h"

namespace fedvar::protocol {

class Handshake {
 public:
  // Draws the run id (kRunIdBytes). kInternal when OpenSSL cannot.
  static Result<std::unique_ptr<Handshake>> start();

  // This run's id: every signed message of the run names it.
  const std::string& run_id() const { return run_id_; }

  // The challenge of the connection `identity`: a fresh nonce, or the one it
  // was sent and has not answered yet (so that a repeated hello does not void
  // the challenge in flight). kInternal when no nonce can be drawn.
  Result<Challenge> challenge(const std::string& identity);

  // Ok iff `join` names this run and the nonce last sent to `identity`; that
  // nonce is used up either way (one join per challenge). kInvalidArgument
  // saying which check failed.
  Status admit(const std::string& identity, const Join& join);

  // Forgets the challenge of a connection that closed.
  void forget(const std::string& identity) { nonces_.erase(identity); }

  // Connections holding an unanswered challenge (at most one each).
  size_t pending() const { return nonces_.size(); }

 private:
  explicit Handshake(std::string run_id) : run_id_(std::move(run_id)) {}

  std::string run_id_;
  std::map<std::string, std::string> nonces_;  // by connection
};

}  // namespace fedvar::protocol
