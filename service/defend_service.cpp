#include "service/defend_service.h"

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "core/log.h"
#include "core/stop.h"
#include "core/stopwatch.h"
#include "protocol/auth.h"
#include "protocol/hex.h"
#include "service/work_queue.h"

namespace fedvar::service {
namespace {

// The poll timeout: how soon a stop request is noticed.
constexpr long kPollMs = 200;
// Messages read per wake-up before the loop looks at finished work again.
constexpr int kReadBatch = 16;
// Frames a request may have after the identity: a REQ delimiter, header,
// model, tag.
constexpr size_t kMaxRequestFrames = 4;
// How long closing waits for replies still being sent.
constexpr int kLingerMs = 1000;
// The inproc address on which the worker wakes the I/O thread.
constexpr const char* kWakeAddress = "inproc://fedvar-defend-wake";

// Where a reply goes: the ROUTER identity, and a REQ client's empty
// delimiter frame when it sent one.
struct Envelope {
  std::string identity;
  bool delimiter = false;
};

// A request the worker runs.
struct Job {
  Envelope to;
  protocol::RequestHeader header;
  zmq::message_t model;
  Clock::time_point arrived;
};

// What the worker hands back.
struct Finished {
  Envelope to;
  protocol::RequestHeader header;
  Clock::time_point arrived;
  Result<PurifyAnswer> answer = Status::Internal("not run");
};

// The defense spec a request names, or null for the service's default.
nlohmann::json requested_defense(const protocol::RequestHeader& header) {
  return header.defense ? nlohmann::json(*header.defense) : nlohmann::json();
}

// One message read frame by frame: the frames kept, or why it was discarded.
struct Incoming {
  std::vector<zmq::message_t> frames;  // the identity first
  std::string refused;                 // non-empty: the rest was discarded
};

}  // namespace

struct DefendService::State {
  ServiceOptions options;
  Handler handler;
  zmq::context_t context;
  std::optional<zmq::socket_t> router;
  std::optional<zmq::socket_t> wake_in;  // the I/O thread's end; the worker has its own
  std::optional<WorkQueue<Job>> jobs;
  WorkQueue<Finished> finished;
  ServiceCounters counters;
  OnReply on_reply;

  void work();
  Result<std::optional<Incoming>> receive_bounded();
  void handle(Incoming incoming);
  void reply(const Envelope& to, const protocol::ReplyHeader& header,
             const std::string* model, nlohmann::json line);
  void refuse(const Envelope& to, const std::string& request_id, const std::string& why,
              Clock::time_point arrived);
  void answer(Finished done);
  void send_finished();
  Status poll_once();
};

DefendService::DefendService(ServiceOptions options, Handler handler)
    : state_(std::make_unique<State>()) {
  state_->options = std::move(options);
  state_->handler = std::move(handler);
}

DefendService::~DefendService() = default;

ServiceCounters DefendService::counters() const { return state_->counters; }

std::string DefendService::endpoint() const {
  return state_->router ? state_->router->get(zmq::sockopt::last_endpoint) : "";
}

Status DefendService::bind() {
  State& s = *state_;
  const ServiceOptions& o = s.options;
  if (o.key.empty()) return Status::InvalidArgument("an HMAC key is required");
  if (o.queue < 1) return Status::InvalidArgument("the queue must hold at least 1");
  if (o.max_request_bytes < 1024) {
    return Status::InvalidArgument("the request size limit must be at least 1 KiB");
  }
  if (o.high_water_mark < 1) return Status::InvalidArgument("the HWM must be >= 1");
  if (!s.handler) return Status::InvalidArgument("no handler");
  try {
    s.router.emplace(s.context, zmq::socket_type::router);
    s.router->set(zmq::sockopt::router_mandatory, 1);  // an unknown peer is an error
    s.router->set(zmq::sockopt::sndhwm, o.high_water_mark);
    s.router->set(zmq::sockopt::rcvhwm, o.high_water_mark);
    s.router->set(zmq::sockopt::sndtimeo, 0);
    s.router->set(zmq::sockopt::maxmsgsize, o.max_request_bytes);
    s.router->set(zmq::sockopt::linger, kLingerMs);
    s.router->bind(o.endpoint);
    s.wake_in.emplace(s.context, zmq::socket_type::pair);
    s.wake_in->bind(kWakeAddress);
  } catch (const zmq::error_t& e) {
    s.router.reset();
    s.wake_in.reset();
    return Status::Unavailable("cannot bind " + o.endpoint + ": " + e.what());
  }
  s.jobs.emplace(o.queue);
  spdlog::info("defend: listening on {} (queue {}, requests up to {} bytes)", endpoint(),
               o.queue, o.max_request_bytes);
  return Status::Ok();
}

Status DefendService::run(const OnReply& on_reply) {
  State& s = *state_;
  if (!s.router) return Status::FailedPrecondition("bind() the service before run()");
  s.on_reply = on_reply;
  std::thread worker([&s] { s.work(); });
  Status status;
  try {
    while (status.ok() && !stop_requested()) status = s.poll_once();
    spdlog::info("defend: stopping");
    for (Job& job : s.jobs->close()) {
      s.refuse(job.to, job.header.request_id, "the service is stopping", job.arrived);
    }
  } catch (const std::exception& e) {
    status = status_from_exception("defend", e);
  }
  (void)s.jobs->close();  // however the loop ended
  worker.join();          // lets the request in progress finish
  try {
    s.send_finished();
  } catch (const std::exception& e) {
    if (status.ok()) status = status_from_exception("defend", e);
  }
  const ServiceCounters& c = s.counters;
  spdlog::info(
      "defend: {} purified, {} error(s) ({} unauthenticated), {} busy, {} reply(ies) "
      "dropped",
      c.purified, c.errors, c.unauthenticated, c.busy, c.dropped_replies);
  return status;
}

void DefendService::State::work() {
  // This thread's own socket, to wake the I/O thread when a result is ready.
  std::optional<zmq::socket_t> wake;
  try {
    wake.emplace(context, zmq::socket_type::pair);
    wake->set(zmq::sockopt::linger, 0);
    wake->connect(kWakeAddress);
  } catch (const zmq::error_t& e) {
    wake.reset();  // the I/O thread's poll timeout finds the results anyway
    spdlog::warn("defend: no wake-up socket ({}); replies may wait {} ms", e.what(),
                 kPollMs);
  }
  while (std::optional<Job> job = jobs->pop_wait()) {
    const std::string id = protocol::to_hex(job->header.request_id);
    spdlog::info("defend: request {}: purifying", id);
    Finished done{std::move(job->to), std::move(job->header), job->arrived};
    try {
      done.answer = handler(done.header, job->model.to_string_view());
    } catch (const std::exception& e) {
      done.answer = status_from_exception("request " + id, e);
    }
    job.reset();  // the model's bytes
    (void)finished.try_push(done);
    try {
      if (wake) (void)wake->send(zmq::message_t(), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The I/O thread polls with a timeout and finds the result anyway.
    }
  }
}

Status DefendService::State::poll_once() {
  zmq::pollitem_t items[] = {{router->handle(), 0, ZMQ_POLLIN, 0},
                             {wake_in->handle(), 0, ZMQ_POLLIN, 0}};
  try {
    zmq::poll(items, 2, std::chrono::milliseconds(kPollMs));
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return Status::Ok();  // a signal: the loop checks the stop
    return Status::Unavailable(std::string("poll: ") + e.what());
  }
  if (items[1].revents & ZMQ_POLLIN) {
    zmq::message_t ping;
    while (wake_in->recv(ping, zmq::recv_flags::dontwait)) {
    }
  }
  send_finished();
  for (int i = 0; i < kReadBatch && (items[0].revents & ZMQ_POLLIN); ++i) {
    FEDVAR_ASSIGN_OR_RETURN(std::optional<Incoming> incoming, receive_bounded());
    if (!incoming) break;
    handle(std::move(*incoming));
  }
  return Status::Ok();
}

Result<std::optional<Incoming>> DefendService::State::receive_bounded() {
  Incoming in;
  try {
    zmq::message_t frame;
    if (!router->recv(frame, zmq::recv_flags::dontwait)) return std::optional<Incoming>();
    bool more = frame.more();
    in.frames.push_back(std::move(frame));
    int64_t bytes = 0;
    size_t count = 0;
    // A multipart message arrives whole; the rest of an oversized one is
    // read and dropped frame by frame, never held.
    while (more) {
      zmq::message_t next;
      (void)router->recv(next, zmq::recv_flags::none);
      more = next.more();
      bytes += static_cast<int64_t>(next.size());
      ++count;
      if (!in.refused.empty()) continue;
      if (count > kMaxRequestFrames) {
        in.refused = "a request has at most 3 frames: [header][model][tag]";
      } else if (bytes > options.max_request_bytes) {
        in.refused =
            "the request exceeds " + std::to_string(options.max_request_bytes) + " bytes";
      } else {
        in.frames.push_back(std::move(next));
        continue;
      }
      in.frames.resize(1);  // the identity, to answer
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return std::optional<Incoming>();
    return Status::Unavailable(std::string("receive: ") + e.what());
  }
  return std::optional<Incoming>(std::move(in));
}

void DefendService::State::handle(Incoming in) {
  const auto arrived = Clock::now();
  std::vector<zmq::message_t>& frames = in.frames;
  Envelope to{frames[0].to_string(), false};
  size_t first = 1;
  if (frames.size() > 1 && frames[1].size() == 0) {  // a REQ client's delimiter
    to.delimiter = true;
    first = 2;
  }
  if (!in.refused.empty()) return refuse(to, "", in.refused, arrived);
  if (frames.size() - first != 3) {
    return refuse(to, "", "a request is 3 frames: [header][model][tag]", arrived);
  }
  const std::string_view header = frames[first].to_string_view();
  const std::string_view model = frames[first + 1].to_string_view();
  const Status authentic = protocol::verify_parts(
      {header, model}, frames[first + 2].to_string_view(), options.key);
  if (!authentic.ok()) {
    ++counters.unauthenticated;
    return refuse(to, "", "authentication failed", arrived);  // nothing of it is decoded
  }
  auto decoded = protocol::decode_request_header(header);
  if (!decoded.ok()) return refuse(to, "", decoded.status().message(), arrived);
  const std::string id = protocol::to_hex(decoded->request_id);
  Job job{to, std::move(decoded).value(), std::move(frames[first + 1]), arrived};
  if (!jobs->try_push(job)) {  // `job` is left as it was
    ++counters.busy;
    protocol::ReplyHeader busy{
        protocol::ReplyKind::kBusy, job.header.request_id, "",
        "the queue is full (" + std::to_string(options.queue) + " waiting); retry later"};
    nlohmann::json line = {{"defense", requested_defense(job.header)},
                           {"seconds", seconds_since(arrived)},
                           {"error", busy.error}};
    return reply(to, busy, nullptr, std::move(line));
  }
  spdlog::info("defend: request {} queued", id);
}

void DefendService::State::refuse(const Envelope& to, const std::string& request_id,
                                  const std::string& why, Clock::time_point arrived) {
  ++counters.errors;
  spdlog::warn("defend: refused a request: {}", why);
  reply(to, protocol::ReplyHeader{protocol::ReplyKind::kError, request_id, "", why},
        nullptr, {{"error", why}, {"seconds", seconds_since(arrived)}});
}

void DefendService::State::send_finished() {
  while (std::optional<Finished> done = finished.try_pop()) answer(std::move(*done));
}

void DefendService::State::answer(Finished done) {
  nlohmann::json line = {{"defense", requested_defense(done.header)},
                         {"seconds", seconds_since(done.arrived)}};
  if (!done.answer.ok()) {
    ++counters.errors;
    const std::string& why = done.answer.status().message();
    spdlog::warn("defend: request {} failed: {}",
                 protocol::to_hex(done.header.request_id), why);
    line["error"] = why;
    return reply(done.to, {protocol::ReplyKind::kError, done.header.request_id, "", why},
                 nullptr, std::move(line));
  }
  ++counters.purified;
  PurifyAnswer& a = done.answer.value();
  a.report["request_id"] = protocol::to_hex(done.header.request_id);
  line["defense"] = a.report.value("defense", nlohmann::json());
  line["acc_before"] = a.report.value("acc_before", nlohmann::json());
  line["acc_after"] = a.report.value("acc_after", nlohmann::json());
  const protocol::ReplyHeader header{protocol::ReplyKind::kPurified,
                                     done.header.request_id, a.report.dump(), ""};
  reply(done.to, header, &a.model, std::move(line));
}

void DefendService::State::reply(const Envelope& to, const protocol::ReplyHeader& header,
                                 const std::string* model, nlohmann::json line) {
  const std::string head = protocol::encode_reply_header(header);
  std::vector<std::string_view> parts{head};
  if (model != nullptr) parts.push_back(*model);
  auto tag = protocol::sign_parts(parts, options.key);
  bool sent = tag.ok();
  try {
    constexpr auto kMore = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    // Only the first frame can be refused (the peer's queue full or the peer
    // gone); once it is taken, ZeroMQ takes the rest of the message.
    sent = sent && router->send(zmq::buffer(to.identity), kMore).has_value();
    if (sent && to.delimiter) (void)router->send(zmq::message_t(), kMore);
    if (sent) {
      for (std::string_view part : parts) (void)router->send(zmq::buffer(part), kMore);
      (void)router->send(zmq::buffer(*tag), zmq::send_flags::dontwait);
    }
  } catch (const zmq::error_t&) {
    sent = false;  // EHOSTUNREACH: the peer is gone
  }
  if (!sent) {
    ++counters.dropped_replies;
    spdlog::warn(
        "defend: reply to request {} dropped (the client is gone or not reading)",
        protocol::to_hex(header.request_id));
  }
  line["request_id"] = header.request_id.empty()
                           ? nlohmann::json()
                           : nlohmann::json(protocol::to_hex(header.request_id));
  line["kind"] = std::string(protocol::reply_kind_name(header.kind));
  line["delivered"] = sent;
  for (const char* key : {"defense", "seconds", "acc_before", "acc_after", "error"}) {
    if (!line.contains(key)) line[key] = nullptr;  // every line has every key
  }
  if (on_reply) on_reply(line);
}

}  // namespace fedvar::service
