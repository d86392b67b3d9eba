// ZMTP 3.0 (rfc.zeromq.org/spec/23), the wire protocol of ZeroMQ's TCP
// sockets, with the NULL mechanism: enough to be the far end of a libzmq
// DEALER. Reading the frames ourselves lets the server bound a whole message
// (its frame count and bytes) while its frames arrive: a ROUTER hands a
// message over only once libzmq has assembled all of it, however large.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fedvar::protocol {

// What a peer may send in one message.
struct MessageLimits {
  size_t max_frames = 2;      // frames per message
  uint64_t max_bytes = 1024;  // the frames' bytes together
};

// What this end sends first: its greeting (ZMTP 3.0, NULL, not as-server)
// and its READY command naming `socket_type` ("ROUTER").
std::string zmtp_handshake(std::string_view socket_type);

// The header of a data frame of `size` bytes; `more`: another frame follows.
std::string zmtp_frame_header(uint64_t size, bool more);

// One message off a connection: its frames, or why it was refused (its
// frames were then dropped as they arrived, never held).
struct ZmtpMessage {
  std::vector<std::string> frames;
  std::string refused;
};

// Parses one connection's incoming bytes as they come: the peer's greeting
// and READY, then data frames grouped into messages within `limits`. Holds
// at most one message in progress (<= max_bytes) and the completed ones not
// yet popped. Commands after READY (PING, ...) are ignored.
class ZmtpReader {
 public:
  explicit ZmtpReader(MessageLimits limits) : limits_(limits) {}

  // Consumes the next bytes of the connection. kInvalidArgument when the peer
  // does not speak ZMTP 3 with the NULL mechanism or breaks its framing; the
  // connection is then unusable and should be closed.
  Status feed(std::string_view bytes);

  // The oldest completed message, if any.
  std::optional<ZmtpMessage> pop();

  // Whether the peer's READY has arrived (data may flow).
  bool ready() const { return ready_; }

 private:
  enum class Stage { kGreeting, kFlags, kSize, kBody };
  Status check_greeting() const;
  Status start_frame();
  Status finish_frame();
  void refuse(std::string why);

  MessageLimits limits_;
  Stage stage_ = Stage::kGreeting;
  bool ready_ = false;
  std::string header_;  // the greeting, then each frame's flags and size bytes
  uint8_t flags_ = 0;
  uint64_t left_ = 0;            // body bytes of the current frame still to come
  std::string* body_ = nullptr;  // where they go; null: dropped
  std::string command_;
  ZmtpMessage message_;  // the message in progress
  uint64_t message_bytes_ = 0;
  size_t message_frames_ = 0;
  std::deque<ZmtpMessage> completed_;
};

}  // namespace fedvar::protocol
