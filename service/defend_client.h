// The client side of the defend service (fedvar defend-request; Python's is
// python/fedvar/remote.py): one request on its own DEALER connection, and
// the reply that answers it, verified.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"

namespace fedvar::service {

struct RemoteRequest {
  std::string model;                     // safetensors bytes
  std::optional<std::string> defense;    // a defense spec; none: the service's
  std::optional<std::string> normalize;  // MEAN,STD... or "estimate"; see wire.h
};

struct RemoteReply {
  std::string request_id;  // raw bytes, the request's
  std::string model;       // the purified model's safetensors bytes
  std::string report;      // the defense's report, JSON text
};

// Sends `request` to `endpoint` signed under `key` and waits up to
// `timeout_s` seconds for the reply whose tag verifies and whose request id
// is this request's (any other reply is skipped). kUnavailable: no reply in
// time, the service is busy, or a socket failure. kInvalidArgument: the
// service refused the request (its reason in the message), or a reply does
// not verify under `key` (a wrong key gets an unverifiable refusal).
Result<RemoteReply> request_purify(const std::string& endpoint, const std::string& key,
                                   const RemoteRequest& request, double timeout_s);

}  // namespace fedvar::service
