// The defend service (fedvar defend): aggregation servers in any language
// send a model and get it back purified, over ZeroMQ (wire format:
// protocol/defend_wire.h, docs/service.md).
//
// Two threads. The I/O thread (the caller of run()) owns the ROUTER socket:
// it reads each message frame by frame within the size limits, verifies its
// HMAC tag before decoding anything, decodes the header and queues the
// request, or answers at once: "error" (refused, unauthenticated or
// malformed: nothing of it is decoded further) or "busy" (the queue is
// full). It never blocks on a send: a reply the peer cannot take now is
// dropped and counted. The worker thread runs the handler (the defense) on
// one request at a time, in arrival order, and hands the result back through
// a locked queue and an inproc socket that wakes the I/O thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "protocol/defend_wire.h"
#include "service/purifier.h"

namespace fedvar::service {

struct ServiceOptions {
  // ZeroMQ bind address; port * binds any free one (see endpoint()).
  std::string endpoint = "tcp://127.0.0.1:5557";
  // The HMAC key every request and reply is signed with; required.
  std::string key;
  // Requests that may wait behind the one being purified; one more is
  // answered "busy" at once. At least 1.
  size_t queue = 4;
  // The most bytes a request (header, model and tag) may have: larger frames
  // make ZeroMQ drop the connection (ZMQ_MAXMSGSIZE); a larger message of
  // smaller frames is discarded as it is read and answered "error".
  int64_t max_request_bytes = int64_t{256} << 20;
  // Messages queued per peer each way (ZMQ_SNDHWM, ZMQ_RCVHWM). A reply to a
  // peer that has this many unread is dropped, not waited for.
  int high_water_mark = 8;
};

// How the worker answers a request (Purifier::run, bound).
using Handler = std::function<Result<PurifyAnswer>(const protocol::RequestHeader& header,
                                                   std::string_view model_bytes)>;

// One line per reply, for the caller's log (stdout): {"request_id": hex or
// null, "kind": purified|error|busy, "defense", "seconds" (arrival to reply),
// "acc_before", "acc_after" (purified) or "error", "delivered"}.
using OnReply = std::function<void(const nlohmann::json& line)>;

// What a service has answered so far.
struct ServiceCounters {
  int64_t purified = 0;
  int64_t errors = 0;  // error replies of every cause
  int64_t busy = 0;
  int64_t unauthenticated = 0;  // requests whose tag did not verify (also errors)
  int64_t dropped_replies = 0;  // replies the peer could not take
};

class DefendService {
 public:
  DefendService(ServiceOptions options, Handler handler);
  ~DefendService();
  DefendService(const DefendService&) = delete;
  DefendService& operator=(const DefendService&) = delete;

  // Checks the options and binds. kInvalidArgument for bad options,
  // kUnavailable when the address cannot be bound.
  Status bind();
  // The bound address (the real port when bound to *); "" before bind().
  std::string endpoint() const;

  // Serves until stop_requested() (core/stop.h), then answers the queued
  // requests "error", lets the worker finish the request in progress, sends
  // its reply and returns Ok. A socket failure is kUnavailable. `on_reply`
  // (may be empty) runs on this thread.
  Status run(const OnReply& on_reply);

  ServiceCounters counters() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace fedvar::service
