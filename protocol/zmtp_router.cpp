#include "protocol/zmtp_router.h"

#include <string_view>

namespace fedvar::protocol {
namespace {

// Frame bodies up to this size are copied next to their headers, so that a
// message of many small frames goes out as a few pieces; larger bodies go
// as pieces of their own, zero-copy.
constexpr size_t kInlineBytes = 8192;

}  // namespace

Status ZmtpRouter::bind(const std::string& endpoint, const RouterOptions& options) {
  options_ = options;
  try {
    socket_.emplace(context_, zmq::socket_type::stream);
    socket_->set(zmq::sockopt::linger, options.linger_ms);
    socket_->set(zmq::sockopt::stream_notify, 1);  // [id][""] on connect and disconnect
    socket_->bind(endpoint);
  } catch (const zmq::error_t& e) {
    socket_.reset();
    return Status::Unavailable("cannot bind " + endpoint + ": " + e.what());
  }
  return Status::Ok();
}

std::string ZmtpRouter::endpoint() const {
  return socket_ ? socket_->get(zmq::sockopt::last_endpoint) : "";
}

Status ZmtpRouter::read_available(int max_reads) {
  retry_closes();
  try {
    for (int i = 0; i < max_reads; ++i) {
      zmq::message_t identity;
      zmq::message_t data;
      if (!socket_->recv(identity, zmq::recv_flags::dontwait)) break;
      // A STREAM socket delivers [identity][bytes], both parts at once.
      if (!identity.more() || !socket_->recv(data, zmq::recv_flags::none)) continue;
      receive_piece(identity.to_string(), data.to_string_view());
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return Status::Ok();
    return Status::Unavailable(std::string("receive: ") + e.what());
  }
  return Status::Ok();
}

void ZmtpRouter::receive_piece(const std::string& identity, std::string_view data) {
  auto it = connections_.find(identity);
  if (data.empty()) {  // the connection opened, or closed
    if (it == connections_.end()) return open(identity);
    connections_.erase(it);
    // A connection this end was closing has been reported (or was the owner's).
    if (closing_.erase(identity) == 0) inbound_.push_back({identity, {}, true});
    return;
  }
  if (closing_.count(identity) != 0) return;
  if (it == connections_.end()) {
    open(identity);
    it = connections_.find(identity);
    if (it == connections_.end()) return;
  }
  ZmtpReader& reader = it->second;
  const Status fed = reader.feed(data);
  while (std::optional<ZmtpMessage> message = reader.pop()) {
    inbound_.push_back({identity, std::move(*message), false});
  }
  if (!fed.ok()) drop(identity, fed.message());
}

void ZmtpRouter::drop(const std::string& identity, std::string why) {
  if (connections_.count(identity) == 0 || closing_.count(identity) != 0) return;
  inbound_.push_back({identity, ZmtpMessage{{}, "closed a connection: " + why}, true});
  close(identity);
}

void ZmtpRouter::open(const std::string& identity) {
  connections_.emplace(identity, ZmtpReader(options_.limits));
  const std::string hello = zmtp_handshake("ROUTER");
  zmq::message_t piece(hello.data(), hello.size());
  if (!send_piece(identity, piece)) connections_.erase(identity);  // already gone
}

std::optional<Inbound> ZmtpRouter::pop() {
  if (inbound_.empty()) return std::nullopt;
  Inbound next = std::move(inbound_.front());
  inbound_.pop_front();
  return next;
}

Status ZmtpRouter::send(const std::string& identity,
                        std::vector<zmq::message_t>& frames) {
  const auto it = connections_.find(identity);
  if (it == connections_.end() || closing_.count(identity) != 0 || !it->second.ready()) {
    return Status::Unavailable("the peer is gone");
  }
  std::vector<zmq::message_t> pieces;
  std::string pending;  // headers and small bodies
  const auto flush = [&] {
    if (!pending.empty()) pieces.emplace_back(pending.data(), pending.size());
    pending.clear();
  };
  for (size_t i = 0; i < frames.size(); ++i) {
    pending += zmtp_frame_header(frames[i].size(), i + 1 < frames.size());
    if (frames[i].size() <= kInlineBytes) {
      pending.append(frames[i].data<char>(), frames[i].size());
      continue;
    }
    flush();
    pieces.push_back(std::move(frames[i]));
  }
  flush();
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (send_piece(identity, pieces[i])) continue;
    if (i == 0) return Status::Unavailable("the peer is gone or not reading");
    drop(identity, "the peer stopped reading in the middle of a message");
    return Status::Unavailable(
        "the peer stopped reading in the middle of a message; its connection was closed");
  }
  return Status::Ok();
}

bool ZmtpRouter::send_piece(const std::string& identity, zmq::message_t& piece) {
  try {
    // Only the identity part can be refused (the peer's queue full); once it
    // is taken, the bytes are queued.
    if (!socket_->send(zmq::buffer(identity),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return false;
    }
    return socket_->send(piece, zmq::send_flags::dontwait).has_value();
  } catch (const zmq::error_t&) {
    return false;  // EHOSTUNREACH: the peer is gone
  }
}

void ZmtpRouter::close(const std::string& identity) {
  if (connections_.count(identity) == 0) return;
  zmq::message_t nothing;  // an empty piece closes a STREAM connection
  if (send_piece(identity, nothing)) {
    connections_.erase(identity);
    closing_.erase(identity);
  } else {
    closing_.insert(identity);
  }
}

void ZmtpRouter::retry_closes() {
  const std::set<std::string> pending = closing_;
  for (const std::string& identity : pending) close(identity);
}

}  // namespace fedvar::protocol
