// Sending and receiving signed protocol messages on a ZeroMQ socket. On the
// wire a message is [header][tensor frame]...[tag] (see encode_frames and
// sign_parts), preceded by the peer's identity frame on a ROUTER socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "core/status.h"
#include "protocol/messages.h"

namespace fedvar::protocol {

// A message encoded and signed once, sendable to any number of peers: each
// send shares the frames' buffers (zmq_msg_copy), so the tensors are not copied.
struct SignedMessage {
  std::vector<zmq::message_t> frames;
  std::string tag;
};

// Encodes (zero-copy) and signs `message` under `key`. Errors as encode_frames
// and sign_parts.
Result<SignedMessage> sign_message(const Message& message, std::string_view key);

// Sends `signed_message` on `socket`, first the `identity` frame when given (a
// ROUTER addressing a peer). kUnavailable when the peer is gone (ROUTER with
// router_mandatory) or the send would block; `signed_message` stays reusable.
Status send_signed(zmq::socket_t& socket, SignedMessage& signed_message,
                   const std::string* identity = nullptr);

// sign_message + send_signed.
Status send_message(zmq::socket_t& socket, const Message& message, std::string_view key,
                    const std::string* identity = nullptr);

// One message off a socket. `message` holds the decoded message or why it
// was refused (bad tag, malformed), so that the caller can answer with a Reject.
struct Received {
  std::string identity;  // the sender, on a ROUTER; empty otherwise
  Result<Message> message = Status::Internal("nothing received");
};

// Receives one multipart message (blocking; poll first) and verifies and
// decodes it. A socket error is the returned Status; a bad message is not.
Result<Received> receive_message(zmq::socket_t& socket, std::string_view key,
                                 bool with_identity);

}  // namespace fedvar::protocol
