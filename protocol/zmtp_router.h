// The server's socket: a ROUTER for untrusted peers. It is a ZMQ_STREAM
// socket that speaks ZMTP itself (zmtp.h), so that each incoming message is
// bounded while its frames arrive and the rest of an oversized one is
// dropped unread; and no send ever blocks. libzmq DEALERs connect to it as
// to a ROUTER. Memory per connection: ZeroMQ's receive queue (rcvhwm chunks
// of 8 KiB) and one message in progress (MessageLimits::max_bytes).
// Not thread-safe: one thread owns it.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "core/status.h"
#include "protocol/zmtp.h"

namespace fedvar::protocol {

struct RouterOptions {
  MessageLimits limits;  // on each incoming message
  int linger_ms = 5000;  // how long closing waits for sends still queued
};

// A message from a peer, or why it came to nothing, or the end of its
// connection.
struct Inbound {
  std::string identity;  // the peer's connection
  ZmtpMessage message;   // refused: too large, or why this end closed it
  // The connection is gone, and no message came: the peer closed it
  // (message.refused empty), or this end did because the peer broke ZMTP or
  // stopped reading in the middle of a message (message.refused says which).
  // Reported once per connection; never for one the owner close()d.
  bool closed = false;
};

class ZmtpRouter {
 public:
  explicit ZmtpRouter(zmq::context_t& context) : context_(context) {}

  // kUnavailable when `endpoint` (tcp://) cannot be bound.
  Status bind(const std::string& endpoint, const RouterOptions& options);
  // The bound endpoint, with the real port when it said *.
  std::string endpoint() const;
  // To poll for ZMQ_POLLIN.
  zmq::socket_t& socket() { return *socket_; }

  // Reads, without blocking, up to `max_reads` pieces of what peers sent;
  // the messages they complete queue for pop(). A socket error: kUnavailable.
  Status read_available(int max_reads);
  std::optional<Inbound> pop();

  // Sends `frames` as one message to the peer `identity`, never blocking.
  // kUnavailable when the peer is gone or its queue is full; nothing was sent
  // then, unless the queue filled in the middle of the message: that
  // connection is closed (and reported closed), since the rest of its stream
  // would be garbage.
  Status send(const std::string& identity, std::vector<zmq::message_t>& frames);

  // Drops the peer's connection (its queued sends too).
  void close(const std::string& identity);

 private:
  void receive_piece(const std::string& identity, std::string_view data);
  void open(const std::string& identity);
  // Closes the connection and reports it closed, saying `why`.
  void drop(const std::string& identity, std::string why);
  bool send_piece(const std::string& identity, zmq::message_t& piece);
  void retry_closes();

  zmq::context_t& context_;
  std::optional<zmq::socket_t> socket_;
  RouterOptions options_;
  std::map<std::string, ZmtpReader> connections_;  // by identity
  std::set<std::string> closing_;  // closes not yet queued (the peer's queue full)
  std::deque<Inbound> inbound_;
};

}  // namespace fedvar::protocol
