// The defend service's header frames in MessagePack, read with protocol/'s
// checked field readers (protocol/fields.h).
#include "protocol/defend_wire.h"

#include <msgpack.hpp>

#include <cstdint>
#include <new>

#include "protocol/fields.h"
#include "protocol/nonce.h"

namespace fedvar::protocol {
namespace {

using detail::Fields;
using Packer = msgpack::packer<msgpack::sbuffer>;

constexpr std::string_view kPurify = "purify";

// Bounds on what the parser allocates for an untrusted header.
const msgpack::unpack_limit kLimits(/*array=*/16, /*map=*/16, /*str=*/kMaxHeaderBytes,
                                    /*bin=*/kRequestIdBytes, /*ext=*/0, /*depth=*/2);

bool reference_input(msgpack::type::object_type, std::size_t, void*) { return true; }

void pack_str(Packer& packer, std::string_view text) {
  packer.pack_str(static_cast<uint32_t>(text.size()));
  packer.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
}

// nil for an empty value, else a string.
void pack_str_or_nil(Packer& packer, std::string_view text) {
  if (text.empty()) {
    packer.pack_nil();
  } else {
    pack_str(packer, text);
  }
}

void pack_request_id(Packer& packer, std::string_view id) {
  if (id.empty()) {
    packer.pack_nil();
    return;
  }
  packer.pack_bin(static_cast<uint32_t>(id.size()));
  packer.pack_bin_body(id.data(), static_cast<uint32_t>(id.size()));
}

void pack_version_and_kind(Packer& packer, uint32_t fields, std::string_view kind) {
  packer.pack_map(2 + fields);
  pack_str(packer, "version");
  packer.pack_uint32(kWireVersion);
  pack_str(packer, "kind");
  pack_str(packer, kind);
}

// The value of `key`, or nullptr when the key is absent or nil.
Result<const msgpack::object*> optional_field(Fields& f, std::string_view key) {
  const Result<const msgpack::object*> v = f.get(key);  // fails only when absent
  if (!v.ok() || v.value()->type == msgpack::type::NIL) return nullptr;
  return v.value();
}

Result<std::optional<std::string>> optional_text(Fields& f, std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, optional_field(f, key));
  if (v == nullptr) return std::optional<std::string>();
  const std::string what = f.what() + "." + std::string(key);
  FEDVAR_ASSIGN_OR_RETURN(std::string text, detail::as_string(*v, what));
  if (text.size() > kMaxSpecBytes) {
    return Status::InvalidArgument(what + " is longer than " +
                                   std::to_string(kMaxSpecBytes) + " bytes");
  }
  return std::optional<std::string>(std::move(text));
}

// The request id: nil (only where `may_be_nil`) or kRequestIdBytes of bin.
Result<std::string> read_request_id(Fields& f, bool may_be_nil) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get("request_id"));
  if (v->type == msgpack::type::NIL && may_be_nil) return std::string();
  if (v->type != msgpack::type::BIN || v->via.bin.size != kRequestIdBytes) {
    return Status::InvalidArgument(f.what() + ".request_id is not " +
                                   std::to_string(kRequestIdBytes) + " bytes of bin");
  }
  return std::string(v->via.bin.ptr, v->via.bin.size);
}

// Reads "version" and "kind" of a header map; the kind is returned.
Result<std::string> read_version_and_kind(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get("version"));
  FEDVAR_ASSIGN_OR_RETURN(const uint64_t version,
                          detail::as_uint64(*v, f.what() + ".version"));
  if (version != kWireVersion) {
    return Status::InvalidArgument(f.what() + ".version is " + std::to_string(version) +
                                   ", expected " + std::to_string(kWireVersion));
  }
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* k, f.get("kind"));
  return detail::as_string(*k, f.what() + ".kind");
}

// Unpacks `bytes` (one whole MessagePack value) and runs `read` on it.
template <typename T, typename Read>
Result<T> decode_with(std::string_view bytes, const char* what, Read read) {
  if (bytes.size() > kMaxHeaderBytes) {
    return Status::InvalidArgument(std::string(what) + " is longer than " +
                                   std::to_string(kMaxHeaderBytes) + " bytes");
  }
  try {
    std::size_t offset = 0;
    const msgpack::object_handle handle = msgpack::unpack(
        bytes.data(), bytes.size(), offset, &reference_input, nullptr, kLimits);
    if (offset != bytes.size()) {
      return Status::InvalidArgument(std::string(what) + " has trailing bytes");
    }
    FEDVAR_ASSIGN_OR_RETURN(Fields f, Fields::of(handle.get(), what));
    return read(f);
  } catch (const std::bad_alloc&) {
    return Status::InvalidArgument(std::string(what) + " needs too much memory");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string(what) +
                                   " is not MessagePack: " + e.what());
  }
}

Result<RequestHeader> read_request(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string kind, read_version_and_kind(f));
  if (kind != kPurify) {
    return Status::InvalidArgument("request.kind is '" + kind + "', expected 'purify'");
  }
  RequestHeader h;
  FEDVAR_ASSIGN_OR_RETURN(h.request_id, read_request_id(f, /*may_be_nil=*/false));
  FEDVAR_ASSIGN_OR_RETURN(h.defense, optional_text(f, "defense"));
  FEDVAR_ASSIGN_OR_RETURN(h.normalize, optional_text(f, "normalize"));
  FEDVAR_RETURN_IF_ERROR(f.check_all_read());
  return h;
}

Result<ReplyHeader> read_reply(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string kind, read_version_and_kind(f));
  ReplyHeader h;
  if (kind == reply_kind_name(ReplyKind::kPurified)) {
    h.kind = ReplyKind::kPurified;
  } else if (kind == reply_kind_name(ReplyKind::kBusy)) {
    h.kind = ReplyKind::kBusy;
  } else if (kind == reply_kind_name(ReplyKind::kError)) {
    h.kind = ReplyKind::kError;
  } else {
    return Status::InvalidArgument("reply.kind '" + kind + "' is not a reply");
  }
  FEDVAR_ASSIGN_OR_RETURN(h.request_id, read_request_id(f, /*may_be_nil=*/true));
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* report, optional_field(f, "report"));
  if (report != nullptr) {
    FEDVAR_ASSIGN_OR_RETURN(h.report, detail::as_string(*report, "reply.report"));
  }
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* error, optional_field(f, "error"));
  if (error != nullptr) {
    FEDVAR_ASSIGN_OR_RETURN(h.error, detail::as_string(*error, "reply.error"));
  }
  FEDVAR_RETURN_IF_ERROR(f.check_all_read());
  return h;
}

}  // namespace

std::string_view reply_kind_name(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kPurified:
      return "purified";
    case ReplyKind::kBusy:
      return "busy";
    case ReplyKind::kError:
      break;
  }
  return "error";
}

std::string encode_request_header(const RequestHeader& header) {
  msgpack::sbuffer buffer;
  Packer packer(buffer);
  pack_version_and_kind(packer, header.normalize ? 3 : 2, kPurify);
  pack_str(packer, "request_id");
  pack_request_id(packer, header.request_id);
  pack_str(packer, "defense");
  if (header.defense) {
    pack_str(packer, *header.defense);
  } else {
    packer.pack_nil();
  }
  if (header.normalize) {
    pack_str(packer, "normalize");
    pack_str(packer, *header.normalize);
  }
  return std::string(buffer.data(), buffer.size());
}

std::string encode_reply_header(const ReplyHeader& header) {
  msgpack::sbuffer buffer;
  Packer packer(buffer);
  pack_version_and_kind(packer, 3, reply_kind_name(header.kind));
  pack_str(packer, "request_id");
  pack_request_id(packer, header.request_id);
  pack_str(packer, "report");
  pack_str_or_nil(packer, header.report);
  pack_str(packer, "error");
  pack_str_or_nil(packer, header.error);
  return std::string(buffer.data(), buffer.size());
}

Result<RequestHeader> decode_request_header(std::string_view bytes) {
  return decode_with<RequestHeader>(bytes, "request", read_request);
}

Result<ReplyHeader> decode_reply_header(std::string_view bytes) {
  return decode_with<ReplyHeader>(bytes, "reply", read_reply);
}

Result<std::string> new_request_id() { return random_bytes(kRequestIdBytes); }

}  // namespace fedvar::protocol
