// The defend service's wire format (fedvar defend): one request, one reply,
// each a ZeroMQ multipart message signed as the federation signs its
// messages (protocol/auth.h sign_parts, under the service's key).
//
//   request: [header][model][tag]           (after the ROUTER's identity)
//     header: MessagePack map {"version": 1, "kind": "purify",
//             "request_id": bin(16), "defense": str|nil, "normalize": str|nil}
//     model:  the model as safetensors bytes
//     tag:    sign_parts([header, model], key), 32 bytes
//   reply:   [header][model, only for "purified"][tag]
//     header: {"version": 1, "kind": "purified"|"error"|"busy",
//              "request_id": the request's, or nil when it could not be read,
//              "report": JSON text|nil, "error": str|nil}
//     tag:    sign_parts([header] or [header, model], key)
//
// A client checks the reply's tag, then that its request_id is its own: the
// tag binds the id, so an old reply replayed does not answer a new request.
// A REQ client's empty delimiter frame is accepted and echoed. The version
// and the kind names are part of the format: a change bumps kWireVersion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fedvar::protocol {

// Sent in every header; any other value is refused.
constexpr uint32_t kWireVersion = 1;
// Bytes of a request id (random, chosen by the client).
constexpr size_t kRequestIdBytes = 16;
// The largest header frame either side decodes (a reply's report included).
constexpr size_t kMaxHeaderBytes = size_t{1} << 20;
// The longest defense spec or normalization text a request may carry.
constexpr size_t kMaxSpecBytes = 4096;

// What a request asks for.
struct RequestHeader {
  std::string request_id;                // kRequestIdBytes raw bytes
  std::optional<std::string> defense;    // a defense spec; none: the service's default
  std::optional<std::string> normalize;  // MEAN,STD... or "estimate"; none: see docs
};

// The kinds of reply; on the wire as their names (reply_kind_name).
enum class ReplyKind { kPurified, kError, kBusy };
std::string_view reply_kind_name(ReplyKind kind);

struct ReplyHeader {
  ReplyKind kind = ReplyKind::kError;
  std::string request_id;  // echoed; empty when the request could not be read
  std::string report;      // JSON text; empty when none
  std::string error;       // why, for "error" and "busy"; empty otherwise
};

// The header frames' MessagePack bytes. Never fail (values are not checked).
std::string encode_request_header(const RequestHeader& header);
std::string encode_reply_header(const ReplyHeader& header);

// Parse and validate untrusted bytes, never throwing: not MessagePack, too
// long, a wrong version or kind, a missing, mistyped or unexpected field, a
// request id that is not kRequestIdBytes of bin, an over-long text: each is
// kInvalidArgument saying which.
Result<RequestHeader> decode_request_header(std::string_view bytes);
Result<ReplyHeader> decode_reply_header(std::string_view bytes);

// kRequestIdBytes from OpenSSL's random generator (kInternal if it fails).
Result<std::string> new_request_id();

}  // namespace fedvar::protocol
