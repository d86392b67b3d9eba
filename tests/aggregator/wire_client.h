// A federated client spoken by hand from a test, as `fedvar client` speaks
// the protocol: a DEALER that asks for a challenge (hello), joins by signing
// it, and records the exact frames of what it signs so that a test can
// replay them from elsewhere. Every wait is bounded by the socket's timeout.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "core/status.h"
#include "protocol/auth.h"
#include "protocol/channel.h"

namespace fedvar::testing {

// The frames of a message as they go on the wire: [header][tensors]...[tag].
using Frames = std::vector<std::string>;

// A DEALER connected to `endpoint`; a receive gives up after `timeout_ms`.
inline zmq::socket_t connect_dealer(zmq::context_t& context, const std::string& endpoint,
                                    int timeout_ms = 60000) {
  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 1000);
  socket.set(zmq::sockopt::rcvtimeo, timeout_ms);
  socket.connect(endpoint);
  return socket;
}

// `message` encoded and tagged under `key` (no tag for an unsigned kind).
inline Frames signed_frames(const protocol::Message& message, const std::string& key) {
  Frames frames;
  auto encoded = protocol::encode_message(message);
  if (!encoded.ok()) return frames;
  for (const zmq::message_t& f : encoded->frames) frames.push_back(f.to_string());
  auto tag = protocol::sign(encoded->digest, key);
  const bool bare = protocol::is_unsigned_kind(encoded->kind) || !tag.ok();
  frames.push_back(bare ? std::string() : tag.value());
  return frames;
}

// Sends recorded frames as one message.
inline bool send_frames(zmq::socket_t& socket, const Frames& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto flag =
        i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
    if (!socket.send(zmq::buffer(frames[i]), flag)) return false;
  }
  return true;
}

// The next message on `socket`, verified under `key` (an unsigned kind is
// taken as is: `authenticated` says which). kUnavailable on timeout.
inline Result<protocol::Received> next_message(zmq::socket_t& socket,
                                               const std::string& key) {
  return protocol::receive_message(socket, key, /*with_identity=*/false);
}

// The next message if it is a T (else an error naming what came).
template <typename T>
Result<T> expect_next(zmq::socket_t& socket, const std::string& key) {
  FEDVAR_ASSIGN_OR_RETURN(protocol::Received received, next_message(socket, key));
  if (!received.message.ok()) return received.message.status();
  if (auto* m = std::get_if<T>(&received.message.value())) return std::move(*m);
  if (auto* r = std::get_if<protocol::Reject>(&received.message.value())) {
    return Status::FailedPrecondition("rejected: " + r->reason);
  }
  return Status::FailedPrecondition(
      "got a " + std::string(protocol::kind_name(protocol::kind_of(*received.message))));
}

// Hello, the server's challenge, then the join of `id` with `samples`
// signed under `key`: the join's frames as sent, for a replay.
inline Result<Frames> join_server(zmq::socket_t& socket, const std::string& id,
                                  int64_t samples, const std::string& key) {
  if (!protocol::send_message(socket, protocol::Hello{}, key).ok()) {
    return Status::Unavailable("could not send the hello");
  }
  FEDVAR_ASSIGN_OR_RETURN(const protocol::Challenge challenge,
                          expect_next<protocol::Challenge>(socket, key));
  Frames join =
      signed_frames(protocol::Join{id, samples, challenge.run_id, challenge.nonce}, key);
  if (!send_frames(socket, join)) return Status::Unavailable("could not send the join");
  return join;
}

}  // namespace fedvar::testing
