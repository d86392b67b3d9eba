#include "protocol/channel.h"

#include <iterator>
#include <zmq_addon.hpp>

#include "protocol/auth.h"

namespace fedvar::protocol {
namespace {

// What goes in the tag frame: the tag under `key`, or nothing for a kind
// that travels unsigned.
Result<std::string> tag_of(const EncodedMessage& message, std::string_view key) {
  if (is_unsigned_kind(message.kind)) return std::string();
  return sign(message.digest, key);
}

}  // namespace

Result<EncodedMessage> encode_message(const Message& message) {
  EncodedMessage out;
  out.kind = kind_of(message);
  FEDVAR_ASSIGN_OR_RETURN(out.frames, encode_frames(message));
  std::vector<std::string_view> parts;
  parts.reserve(out.frames.size());
  for (const zmq::message_t& frame : out.frames) parts.push_back(frame.to_string_view());
  FEDVAR_ASSIGN_OR_RETURN(out.digest, digest_parts(parts));
  return out;
}

Status send_encoded(zmq::socket_t& socket, EncodedMessage& message, std::string_view key,
                    const std::string* identity) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string tag, tag_of(message, key));
  try {
    if (identity != nullptr &&
        !socket.send(zmq::buffer(*identity), zmq::send_flags::sndmore)) {
      return Status::Unavailable("send would block");
    }
    for (zmq::message_t& frame : message.frames) {
      zmq::message_t copy;
      copy.copy(frame);  // shares the buffer; the original stays sendable
      if (!socket.send(copy, zmq::send_flags::sndmore)) {
        return Status::Unavailable("send would block");
      }
    }
    if (!socket.send(zmq::buffer(tag), zmq::send_flags::none)) {
      return Status::Unavailable("send would block");
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Status::Unavailable("peer is gone");
    return Status::Unavailable(std::string("ZeroMQ send: ") + e.what());
  }
  return Status::Ok();
}

Status send_encoded(ZmtpRouter& router, const std::string& identity,
                    EncodedMessage& message, std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string tag, tag_of(message, key));
  std::vector<zmq::message_t> frames;
  frames.reserve(message.frames.size() + 1);
  for (zmq::message_t& frame : message.frames) {
    frames.emplace_back();
    frames.back().copy(frame);  // shares the buffer; the original stays sendable
  }
  frames.emplace_back(tag.data(), tag.size());
  return router.send(identity, frames);
}

Status send_message(zmq::socket_t& socket, const Message& message, std::string_view key,
                    const std::string* identity) {
  FEDVAR_ASSIGN_OR_RETURN(EncodedMessage encoded, encode_message(message));
  return send_encoded(socket, encoded, key, identity);
}

namespace {

// Receives one message's frames: the identity (on a ROUTER), the parts and
// the tag (the last frame). No parts: `message` says why.
Result<Received> receive_frames(zmq::socket_t& socket, bool with_identity,
                                std::vector<zmq::message_t>& frames,
                                std::vector<std::string_view>& parts) {
  try {
    if (!zmq::recv_multipart(socket, std::back_inserter(frames))) {
      return Status::Unavailable("nothing to receive");
    }
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("ZeroMQ receive: ") + e.what());
  }
  Received out;
  size_t first = 0;
  if (with_identity) {
    out.identity = frames.empty() ? "" : frames.front().to_string();
    first = 1;
  }
  if (frames.size() < first + 2) {
    out.message = Status::InvalidArgument("message has no payload or no tag frame");
    return out;
  }
  for (size_t i = first; i + 1 < frames.size(); ++i) {
    parts.push_back(frames[i].to_string_view());
  }
  return out;
}

Status authenticate(const std::vector<std::string_view>& parts, std::string_view tag,
                    std::string_view key) {
  const Status authentic = verify_parts(parts, tag, key);
  if (authentic.ok()) return authentic;
  return Status::InvalidArgument("authentication failed: " + authentic.message());
}

// Ok iff the tag suits the claimed kind: none on an unsigned kind, else one
// that verifies under key_for(the claimed client id).
Status check_tag(const Claim& claim, const std::vector<std::string_view>& parts,
                 std::string_view tag, const KeyForClient& key_for) {
  const std::string kind(kind_name(claim.kind));
  if (is_unsigned_kind(claim.kind)) {
    if (tag.empty()) return Status::Ok();
    return Status::InvalidArgument("a " + kind +
                                   " travels unsigned, but this one has a tag");
  }
  if (tag.empty()) {
    return Status::InvalidArgument("authentication failed: a " + kind +
                                   " must be signed, but its tag is empty");
  }
  FEDVAR_ASSIGN_OR_RETURN(const std::string key, key_for(claim.client_id));
  return authenticate(parts, tag, key);
}

}  // namespace

Result<Received> receive_message(zmq::socket_t& socket, std::string_view key,
                                 bool with_identity) {
  const KeyForClient key_for = [&key](std::string_view) -> Result<std::string> {
    return std::string(key);
  };
  return receive_message(socket, key_for, with_identity);
}

Received open_message(const std::vector<std::string_view>& frames,
                      const KeyForClient& key_for) {
  Received out;
  if (frames.size() < 2) {
    out.message = Status::InvalidArgument("message has no payload or no tag frame");
    return out;
  }
  const std::vector<std::string_view> parts(frames.begin(), frames.end() - 1);
  Result<Claim> claim = read_claim(parts.front());
  if (!claim.ok()) {
    out.message = claim.status();
    return out;
  }
  out.client_id = claim->client_id;
  const Status tagged = check_tag(*claim, parts, frames.back(), key_for);
  out.authenticated = tagged.ok() && !is_unsigned_kind(claim->kind);
  out.message = tagged.ok() ? decode_frames(parts) : Result<Message>(tagged);
  return out;
}

Result<Received> receive_message(zmq::socket_t& socket, const KeyForClient& key_for,
                                 bool with_identity) {
  std::vector<zmq::message_t> frames;
  std::vector<std::string_view> parts;
  FEDVAR_ASSIGN_OR_RETURN(Received out,
                          receive_frames(socket, with_identity, frames, parts));
  if (parts.empty()) return out;
  parts.push_back(frames.back().to_string_view());
  Received opened = open_message(parts, key_for);
  opened.identity = std::move(out.identity);
  return opened;
}

}  // namespace fedvar::protocol
