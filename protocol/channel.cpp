#include "protocol/channel.h"

#include <iterator>
#include <zmq_addon.hpp>

#include "protocol/auth.h"

namespace fedvar::protocol {

Result<SignedMessage> sign_message(const Message& message, std::string_view key) {
  SignedMessage out;
  FEDVAR_ASSIGN_OR_RETURN(out.frames, encode_frames(message));
  std::vector<std::string_view> parts;
  parts.reserve(out.frames.size());
  for (const zmq::message_t& frame : out.frames) parts.push_back(frame.to_string_view());
  FEDVAR_ASSIGN_OR_RETURN(out.tag, sign_parts(parts, key));
  return out;
}

Status send_signed(zmq::socket_t& socket, SignedMessage& signed_message,
                   const std::string* identity) {
  try {
    if (identity != nullptr &&
        !socket.send(zmq::buffer(*identity), zmq::send_flags::sndmore)) {
      return Status::Unavailable("send would block");
    }
    for (zmq::message_t& frame : signed_message.frames) {
      zmq::message_t copy;
      copy.copy(frame);  // shares the buffer; the original stays sendable
      if (!socket.send(copy, zmq::send_flags::sndmore)) {
        return Status::Unavailable("send would block");
      }
    }
    if (!socket.send(zmq::buffer(signed_message.tag), zmq::send_flags::none)) {
      return Status::Unavailable("send would block");
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Status::Unavailable("peer is gone");
    return Status::Unavailable(std::string("ZeroMQ send: ") + e.what());
  }
  return Status::Ok();
}

Status send_message(zmq::socket_t& socket, const Message& message, std::string_view key,
                    const std::string* identity) {
  FEDVAR_ASSIGN_OR_RETURN(SignedMessage signed_message, sign_message(message, key));
  return send_signed(socket, signed_message, identity);
}

Result<Received> receive_message(zmq::socket_t& socket, std::string_view key,
                                 bool with_identity) {
  std::vector<zmq::message_t> frames;
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
  std::vector<std::string_view> parts;
  for (size_t i = first; i + 1 < frames.size(); ++i) {
    parts.push_back(frames[i].to_string_view());
  }
  const Status authentic = verify_parts(parts, frames.back().to_string_view(), key);
  if (!authentic.ok()) {
    out.message =
        Status::InvalidArgument("authentication failed: " + authentic.message());
    return out;
  }
  out.message = decode_frames(parts);
  return out;
}

}  // namespace fedvar::protocol
