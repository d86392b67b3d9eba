#include "service/defend_client.h"

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <sstream>
#include <vector>

#include "core/log.h"
#include "core/stopwatch.h"
#include "protocol/auth.h"
#include "protocol/defend_wire.h"

namespace fedvar::service {
namespace {

// What a reply says, once its frames are read: the answer, or a Status
// saying why there is none; `skip` for a verified reply to another request.
struct Outcome {
  Result<RemoteReply> reply = Status::Internal("no reply");
  bool skip = false;
};

// A reply whose tag does not verify: the service's reason when the header
// reads as a refusal (untrusted, so only shown), else that it is not ours.
Status unverified(std::string_view header) {
  auto h = protocol::decode_reply_header(header);
  const std::string said = h.ok() && h->kind == protocol::ReplyKind::kError
                               ? " (the unverified reply says: " + h->error + ")"
                               : "";
  return Status::InvalidArgument(
      "the service's reply does not verify under this key: a wrong key?" + said);
}

Outcome read_reply(const std::vector<zmq::message_t>& frames, const std::string& key,
                   const std::string& request_id) {
  Outcome out;
  if (frames.size() < 2 || frames.size() > 3) {
    out.reply = Status::InvalidArgument("the reply has " + std::to_string(frames.size()) +
                                        " frames");
    return out;
  }
  std::vector<std::string_view> parts;
  for (size_t i = 0; i + 1 < frames.size(); ++i)
    parts.push_back(frames[i].to_string_view());
  if (!protocol::verify_parts(parts, frames.back().to_string_view(), key).ok()) {
    out.reply = unverified(parts[0]);
    return out;
  }
  auto header = protocol::decode_reply_header(parts[0]);
  if (!header.ok()) {
    out.reply = header.status().with_context("the service's reply");
    return out;
  }
  // A refusal the service could not attribute (a malformed request) has no
  // id; on this connection it can only be about this request.
  if (!header->request_id.empty() && header->request_id != request_id) {
    out.skip = true;
    return out;
  }
  if (header->kind == protocol::ReplyKind::kBusy) {
    out.reply = Status::Unavailable("the service is busy: " + header->error);
  } else if (header->kind == protocol::ReplyKind::kError) {
    out.reply =
        Status::InvalidArgument("the service refused the request: " + header->error);
  } else if (parts.size() != 2) {
    out.reply = Status::InvalidArgument("a purified reply without a model");
  } else {
    out.reply = RemoteReply{request_id, std::string(parts[1]), header->report};
  }
  return out;
}

Result<RemoteReply> exchange(zmq::socket_t& socket, const std::string& key,
                             const RemoteRequest& request, double timeout_s) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string id, protocol::new_request_id());
  const std::string header =
      protocol::encode_request_header({id, request.defense, request.normalize});
  FEDVAR_ASSIGN_OR_RETURN(const std::string tag,
                          protocol::sign_parts({header, request.model}, key));
  const auto start = Clock::now();
  if (!socket.send(zmq::buffer(header), zmq::send_flags::sndmore) ||
      !socket.send(zmq::buffer(request.model), zmq::send_flags::sndmore) ||
      !socket.send(zmq::buffer(tag), zmq::send_flags::none)) {
    return Status::Unavailable("could not send the request within the timeout");
  }
  while (true) {
    const double left = timeout_s - seconds_since(start);
    if (left <= 0) break;
    zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(static_cast<long>(left * 1000) + 1));
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket, std::back_inserter(frames));
    Outcome outcome = read_reply(frames, key, id);
    if (!outcome.skip) return std::move(outcome.reply);
    spdlog::warn("defend-request: skipped a reply to another request");
  }
  std::ostringstream seconds;
  seconds << timeout_s;
  return Status::Unavailable("no reply within " + seconds.str() + " s");
}

}  // namespace

Result<RemoteReply> request_purify(const std::string& endpoint, const std::string& key,
                                   const RemoteRequest& request, double timeout_s) {
  if (key.empty()) return Status::InvalidArgument("an HMAC key is required");
  if (!(timeout_s > 0)) return Status::InvalidArgument("the timeout must be positive");
  try {
    zmq::context_t context;
    zmq::socket_t socket(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::sndtimeo, static_cast<int>(std::min(timeout_s * 1000, 2e9)));
    socket.connect(endpoint);
    return exchange(socket, key, request, timeout_s);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("ZeroMQ (" + endpoint + "): " + e.what());
  }
}

}  // namespace fedvar::service
