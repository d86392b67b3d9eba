// decode() from messages.h: parse untrusted bytes with bounded allocation,
// then read and check every field of the message's kind.
#include <msgpack.hpp>

#include <cstdint>
#include <new>
#include <utility>

#include "protocol/fields.h"
#include "protocol/messages.h"
#include "protocol/tensor_codec.h"

namespace fedvar::protocol {
namespace {

using detail::Fields;

// Bounds on what the parser will allocate for untrusted input.
const msgpack::unpack_limit kLimits(/*array=*/kMaxTensors, /*map=*/64,
                                    /*str=*/1 << 20, /*bin=*/kMaxTensorBytes,
                                    /*ext=*/0, /*depth=*/8);

// Strings and bins point into the caller's bytes instead of being copied.
bool reference_input(msgpack::type::object_type, std::size_t, void*) { return true; }

Result<int64_t> read_int(Fields& f, std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get(key));
  return detail::as_int64(*v, f.what() + "." + std::string(key));
}

Result<double> read_double(Fields& f, std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get(key));
  return detail::as_double(*v, f.what() + "." + std::string(key));
}

Result<std::string> read_string(Fields& f, std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get(key));
  return detail::as_string(*v, f.what() + "." + std::string(key));
}

// Where tensor bytes live when they are not in the message: frames, and
// which of them a tensor has used (both null for a single-frame message).
struct OutOfBand {
  const std::vector<std::string_view>* frames = nullptr;
  std::vector<bool>* used = nullptr;
};

Result<TensorMap> read_tensors(Fields& f, const OutOfBand& oob) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get("tensors"));
  return detail::unpack_tensors(*v, f.what() + ".tensors", oob.frames, oob.used);
}

Status check(bool ok, const Fields& f, const std::string& what) {
  return ok ? Status::Ok() : Status::InvalidArgument(f.what() + "." + what);
}

Result<std::string> read_client_id(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(std::string id, read_string(f, "client_id"));
  FEDVAR_RETURN_IF_ERROR(check(!id.empty(), f, "client_id is empty"));
  FEDVAR_RETURN_IF_ERROR(
      check(id.size() <= kMaxClientIdBytes, f,
            "client_id is longer than " + std::to_string(kMaxClientIdBytes) + " bytes"));
  return id;
}

Result<std::string> read_bytes(Fields& f, std::string_view key, size_t size) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get(key));
  return detail::as_bin(*v, f.what() + "." + std::string(key), size);
}

Result<std::string> read_run_id(Fields& f) {
  return read_bytes(f, "run_id", kRunIdBytes);
}

Result<int64_t> read_num_samples(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(const int64_t n, read_int(f, "num_samples"));
  FEDVAR_RETURN_IF_ERROR(check(n > 0, f, "num_samples must be positive"));
  return n;
}

Result<int64_t> read_round(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(const int64_t round, read_int(f, "round"));
  FEDVAR_RETURN_IF_ERROR(check(round >= 0, f, "round is negative"));
  return round;
}

Result<TrainingConfig> read_config(Fields& parent) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, parent.get("config"));
  FEDVAR_ASSIGN_OR_RETURN(Fields f, Fields::of(*v, parent.what() + ".config"));
  TrainingConfig c;
  FEDVAR_ASSIGN_OR_RETURN(c.epochs, read_int(f, "epochs"));
  FEDVAR_ASSIGN_OR_RETURN(c.lr, read_double(f, "lr"));
  FEDVAR_ASSIGN_OR_RETURN(c.batch_size, read_int(f, "batch_size"));
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* seed, f.get("seed"));
  FEDVAR_ASSIGN_OR_RETURN(c.seed, detail::as_uint64(*seed, f.what() + ".seed"));
  FEDVAR_ASSIGN_OR_RETURN(c.momentum, read_double(f, "momentum"));
  FEDVAR_ASSIGN_OR_RETURN(c.weight_decay, read_double(f, "weight_decay"));
  FEDVAR_RETURN_IF_ERROR(f.check_all_read());
  FEDVAR_RETURN_IF_ERROR(check(c.epochs > 0, f, "epochs must be positive"));
  FEDVAR_RETURN_IF_ERROR(check(c.lr > 0, f, "lr must be positive"));
  FEDVAR_RETURN_IF_ERROR(check(c.batch_size > 0, f, "batch_size must be positive"));
  FEDVAR_RETURN_IF_ERROR(
      check(c.momentum >= 0 && c.momentum < 1, f, "momentum must be in [0, 1)"));
  FEDVAR_RETURN_IF_ERROR(check(c.weight_decay >= 0, f, "weight_decay is negative"));
  return c;
}

Result<Message> read_signed_body(MessageKind kind, Fields& f, const OutOfBand& oob) {
  switch (kind) {
    case MessageKind::kJoin: {
      Join m;
      FEDVAR_ASSIGN_OR_RETURN(m.client_id, read_client_id(f));
      FEDVAR_ASSIGN_OR_RETURN(m.num_samples, read_num_samples(f));
      FEDVAR_ASSIGN_OR_RETURN(m.run_id, read_run_id(f));
      FEDVAR_ASSIGN_OR_RETURN(m.nonce, read_bytes(f, "nonce", kNonceBytes));
      return Message(std::move(m));
    }
    case MessageKind::kRoundTask: {
      RoundTask m;
      FEDVAR_ASSIGN_OR_RETURN(m.round, read_round(f));
      FEDVAR_ASSIGN_OR_RETURN(m.run_id, read_run_id(f));
      FEDVAR_ASSIGN_OR_RETURN(m.config, read_config(f));
      FEDVAR_ASSIGN_OR_RETURN(m.tensors, read_tensors(f, oob));
      return Message(std::move(m));
    }
    case MessageKind::kUpdate: {
      Update m;
      FEDVAR_ASSIGN_OR_RETURN(m.round, read_round(f));
      FEDVAR_ASSIGN_OR_RETURN(m.run_id, read_run_id(f));
      FEDVAR_ASSIGN_OR_RETURN(m.client_id, read_client_id(f));
      FEDVAR_ASSIGN_OR_RETURN(m.num_samples, read_num_samples(f));
      FEDVAR_ASSIGN_OR_RETURN(m.tensors, read_tensors(f, oob));
      return Message(std::move(m));
    }
    case MessageKind::kShutdown: {
      Shutdown m;
      FEDVAR_ASSIGN_OR_RETURN(m.run_id, read_run_id(f));
      return Message(std::move(m));
    }
    default:
      return Status::InvalidArgument("unknown message kind");
  }
}

Result<Message> read_body(MessageKind kind, Fields& f, const OutOfBand& oob) {
  switch (kind) {
    case MessageKind::kReject: {
      Reject m;
      FEDVAR_ASSIGN_OR_RETURN(m.reason, read_string(f, "reason"));
      return Message(std::move(m));
    }
    case MessageKind::kHello:
      return Message(Hello{});
    case MessageKind::kChallenge: {
      Challenge m;
      FEDVAR_ASSIGN_OR_RETURN(m.run_id, read_run_id(f));
      FEDVAR_ASSIGN_OR_RETURN(m.nonce, read_bytes(f, "nonce", kNonceBytes));
      return Message(std::move(m));
    }
    default:
      return read_signed_body(kind, f, oob);
  }
}

Result<MessageKind> read_kind(Fields& f) {
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* v, f.get("kind"));
  FEDVAR_ASSIGN_OR_RETURN(const uint64_t kind, detail::as_uint64(*v, "message kind"));
  if (kind < static_cast<uint64_t>(MessageKind::kJoin) ||
      kind > static_cast<uint64_t>(MessageKind::kChallenge)) {
    return Status::InvalidArgument("unknown message kind " + std::to_string(kind));
  }
  return static_cast<MessageKind>(kind);
}

Result<Message> read_message(const msgpack::object& root, const OutOfBand& oob) {
  FEDVAR_ASSIGN_OR_RETURN(Fields f, Fields::of(root, "message"));
  FEDVAR_ASSIGN_OR_RETURN(const msgpack::object* version_obj, f.get("version"));
  FEDVAR_ASSIGN_OR_RETURN(const uint64_t version,
                          detail::as_uint64(*version_obj, "protocol version"));
  if (version != kProtocolVersion) {
    return Status::InvalidArgument("protocol version " + std::to_string(version) +
                                   ", expected " + std::to_string(kProtocolVersion));
  }
  FEDVAR_ASSIGN_OR_RETURN(const MessageKind kind, read_kind(f));
  FEDVAR_ASSIGN_OR_RETURN(Message message, read_body(kind, f, oob));
  FEDVAR_RETURN_IF_ERROR(f.check_all_read());
  return message;
}

Result<Message> decode_with(std::string_view bytes, const OutOfBand& oob) {
  try {
    std::size_t offset = 0;
    const msgpack::object_handle handle = msgpack::unpack(
        bytes.data(), bytes.size(), offset, &reference_input, nullptr, kLimits);
    if (offset != bytes.size()) {
      return Status::InvalidArgument(
          "message has " + std::to_string(bytes.size() - offset) + " trailing bytes");
    }
    return read_message(handle.get(), oob);
  } catch (const msgpack::unpack_error& e) {
    return Status::InvalidArgument(std::string("not a MessagePack message: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Status::InvalidArgument("message needs more memory than is available");
  }
}

// Just the kind and, for a join or update, the client id.
Result<Claim> read_claim_of(const msgpack::object& root) {
  FEDVAR_ASSIGN_OR_RETURN(Fields f, Fields::of(root, "message"));
  Claim claim;
  FEDVAR_ASSIGN_OR_RETURN(claim.kind, read_kind(f));
  if (claim.kind == MessageKind::kJoin || claim.kind == MessageKind::kUpdate) {
    FEDVAR_ASSIGN_OR_RETURN(claim.client_id, read_client_id(f));
  }
  return claim;
}

}  // namespace

Result<Claim> read_claim(std::string_view header) {
  try {
    std::size_t offset = 0;
    const msgpack::object_handle handle = msgpack::unpack(
        header.data(), header.size(), offset, &reference_input, nullptr, kLimits);
    return read_claim_of(handle.get());
  } catch (const msgpack::unpack_error& e) {
    return Status::InvalidArgument(std::string("not a MessagePack message: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Status::InvalidArgument("message needs more memory than is available");
  }
}

Result<Message> decode(std::string_view bytes) { return decode_with(bytes, {}); }

Result<Message> decode_frames(const std::vector<std::string_view>& frames) {
  if (frames.empty() || frames.size() > kMaxTensors + 1) {
    return Status::InvalidArgument("message has " + std::to_string(frames.size()) +
                                   " frames");
  }
  std::vector<bool> used(frames.size(), false);
  FEDVAR_ASSIGN_OR_RETURN(Message message, decode_with(frames[0], {&frames, &used}));
  for (size_t i = 1; i < frames.size(); ++i) {
    if (!used[i]) {
      return Status::InvalidArgument("frame " + std::to_string(i) +
                                     " is not used by any tensor");
    }
  }
  return message;
}

}  // namespace fedvar::protocol
