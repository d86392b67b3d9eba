// Sending and receiving protocol messages on a ZeroMQ socket, or on the
// server's ZmtpRouter. On the wire a message is [header][tensor frame]...[tag]
// (see encode_frames and sign_parts), preceded by the peer's identity frame
// on a ROUTER socket. The tag frame of a kind that travels unsigned
// (is_unsigned_kind: hello, challenge, reject) is empty.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "core/status.h"
#include "protocol/messages.h"
#include "protocol/zmtp_router.h"

namespace fedvar::protocol {

// A message encoded once, sendable to any number of peers, each under its
// own key: each send shares the frames' buffers (zmq_msg_copy) and tags the
// digest computed here, so the tensors are neither copied nor hashed again.
struct EncodedMessage {
  std::vector<zmq::message_t> frames;
  std::string digest;  // digest_parts of the frames
  MessageKind kind = MessageKind::kReject;
};

// Encodes (zero-copy) and digests `message`. Errors as encode_frames.
Result<EncodedMessage> encode_message(const Message& message);

// Sends `message` signed under `key` on `socket` (an unsigned kind with an
// empty tag; `key` is then unused), first the `identity` frame when given (a
// ROUTER addressing a peer). kUnavailable when the peer is gone (ROUTER with
// router_mandatory) or the send would block; `message` stays reusable.
Status send_encoded(zmq::socket_t& socket, EncodedMessage& message, std::string_view key,
                    const std::string* identity = nullptr);

// As above, to the peer `identity` of the server's router: never blocks
// (ZmtpRouter::send); kUnavailable when the peer is gone or not reading.
Status send_encoded(ZmtpRouter& router, const std::string& identity,
                    EncodedMessage& message, std::string_view key);

// encode_message + send_encoded.
Status send_message(zmq::socket_t& socket, const Message& message, std::string_view key,
                    const std::string* identity = nullptr);

// One message off a socket. `message` holds the decoded message or why it
// was refused (bad or missing tag, a tag on an unsigned kind, malformed), so
// that the caller can answer with a Reject.
struct Received {
  std::string identity;        // the sender, on a ROUTER; empty otherwise
  std::string client_id;       // the client id a join or update carries; else empty
  bool authenticated = false;  // its tag verified; false for an unsigned kind
  Result<Message> message = Status::Internal("nothing received");
};

// Receives one multipart message (blocking; poll first) and verifies it under
// `key` and decodes it (a client: the server signs under the client's key);
// an unsigned kind is decoded with `authenticated` false. A socket error is
// the returned Status; a bad message is not.
Result<Received> receive_message(zmq::socket_t& socket, std::string_view key,
                                 bool with_identity);

// The key a message must verify under, given the client id it carries (""
// for a message that carries none).
using KeyForClient = std::function<Result<std::string>(std::string_view client_id)>;

// Authenticates, then decodes, the frames of one message
// ([header][tensor frame]...[tag]) for the server: only the header is read
// for the kind and client id it claims (read_claim), the tag is verified
// under key_for(that id) over every frame, and only then are the tensors
// decoded. An unsigned kind must come with an empty tag and is decoded
// unauthenticated. `identity` is left empty.
Received open_message(const std::vector<std::string_view>& frames,
                      const KeyForClient& key_for);

// A message off a plain ROUTER, opened as above. libzmq assembles a ROUTER's
// message whole before it is read: a server facing untrusted peers reads
// through a ZmtpRouter, which bounds it while it arrives.
Result<Received> receive_message(zmq::socket_t& socket, const KeyForClient& key_for,
                                 bool with_identity);

}  // namespace fedvar::protocol
