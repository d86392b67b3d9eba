// encode(), kind_of() and validate_against() from messages.h (decode() is in
// decode.cpp). A message is one MessagePack map, {"version", "kind", then the
// message's fields in a fixed order}.
#include "protocol/messages.h"

#include <c10/util/StringUtil.h>
#include <msgpack.hpp>

#include <memory>
#include <new>
#include <utility>

#include "protocol/tensor_codec.h"

namespace fedvar::protocol {
namespace {

using detail::Packer;
using Tensors = std::vector<torch::Tensor>;

void pack_key(Packer& packer, std::string_view key) {
  packer.pack_str(static_cast<uint32_t>(key.size()));
  packer.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
}

void pack_header(Packer& packer, MessageKind kind, uint32_t fields) {
  packer.pack_map(2 + fields);
  pack_key(packer, "version");
  packer.pack_uint32(kProtocolVersion);
  pack_key(packer, "kind");
  packer.pack_uint8(static_cast<uint8_t>(kind));
}

void pack_bytes(Packer& packer, std::string_view key, const std::string& bytes) {
  pack_key(packer, key);
  packer.pack_bin(static_cast<uint32_t>(bytes.size()));
  packer.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
}

void pack_config(const TrainingConfig& c, Packer& packer) {
  packer.pack_map(6);
  pack_key(packer, "epochs");
  packer.pack_int64(c.epochs);
  pack_key(packer, "lr");
  packer.pack_double(c.lr);
  pack_key(packer, "batch_size");
  packer.pack_int64(c.batch_size);
  pack_key(packer, "seed");
  packer.pack_uint64(c.seed);
  pack_key(packer, "momentum");
  packer.pack_double(c.momentum);
  pack_key(packer, "weight_decay");
  packer.pack_double(c.weight_decay);
}

Status pack_body(const Join& m, Packer& packer, Tensors*) {
  pack_header(packer, MessageKind::kJoin, 4);
  pack_key(packer, "client_id");
  packer.pack(m.client_id);
  pack_key(packer, "num_samples");
  packer.pack_int64(m.num_samples);
  pack_bytes(packer, "run_id", m.run_id);
  pack_bytes(packer, "nonce", m.nonce);
  return Status::Ok();
}

Status pack_body(const RoundTask& m, Packer& packer, Tensors* out_of_band) {
  pack_header(packer, MessageKind::kRoundTask, 4);
  pack_key(packer, "round");
  packer.pack_int64(m.round);
  pack_bytes(packer, "run_id", m.run_id);
  pack_key(packer, "config");
  pack_config(m.config, packer);
  pack_key(packer, "tensors");
  return detail::pack_tensors(m.tensors, packer, out_of_band);
}

Status pack_body(const Update& m, Packer& packer, Tensors* out_of_band) {
  pack_header(packer, MessageKind::kUpdate, 5);
  pack_key(packer, "round");
  packer.pack_int64(m.round);
  pack_bytes(packer, "run_id", m.run_id);
  pack_key(packer, "client_id");
  packer.pack(m.client_id);
  pack_key(packer, "num_samples");
  packer.pack_int64(m.num_samples);
  pack_key(packer, "tensors");
  return detail::pack_tensors(m.tensors, packer, out_of_band);
}

Status pack_body(const Reject& m, Packer& packer, Tensors*) {
  pack_header(packer, MessageKind::kReject, 1);
  pack_key(packer, "reason");
  packer.pack(m.reason);
  return Status::Ok();
}

Status pack_body(const Shutdown& m, Packer& packer, Tensors*) {
  pack_header(packer, MessageKind::kShutdown, 1);
  pack_bytes(packer, "run_id", m.run_id);
  return Status::Ok();
}

Status pack_body(const Hello&, Packer& packer, Tensors*) {
  pack_header(packer, MessageKind::kHello, 0);
  return Status::Ok();
}

Status pack_body(const Challenge& m, Packer& packer, Tensors*) {
  pack_header(packer, MessageKind::kChallenge, 2);
  pack_bytes(packer, "run_id", m.run_id);
  pack_bytes(packer, "nonce", m.nonce);
  return Status::Ok();
}

Result<std::string> encode_with(const Message& message, Tensors* out_of_band) {
  try {
    msgpack::sbuffer buffer;
    Packer packer(buffer);
    FEDVAR_RETURN_IF_ERROR(std::visit(
        [&](const auto& m) { return pack_body(m, packer, out_of_band); }, message));
    return std::string(buffer.data(), buffer.size());
  } catch (const std::bad_alloc&) {
    return Status::Internal("out of memory encoding a message");
  }
}

// ZeroMQ's free function for a frame over a tensor: drops the reference.
void release_tensor(void* /*data*/, void* hint) {
  delete static_cast<torch::Tensor*>(hint);
}

}  // namespace

MessageKind kind_of(const Message& message) {
  struct Visitor {
    MessageKind operator()(const Join&) const { return MessageKind::kJoin; }
    MessageKind operator()(const RoundTask&) const { return MessageKind::kRoundTask; }
    MessageKind operator()(const Update&) const { return MessageKind::kUpdate; }
    MessageKind operator()(const Reject&) const { return MessageKind::kReject; }
    MessageKind operator()(const Shutdown&) const { return MessageKind::kShutdown; }
    MessageKind operator()(const Hello&) const { return MessageKind::kHello; }
    MessageKind operator()(const Challenge&) const { return MessageKind::kChallenge; }
  };
  return std::visit(Visitor{}, message);
}

std::string_view kind_name(MessageKind kind) {
  switch (kind) {
    case MessageKind::kJoin:
      return "join";
    case MessageKind::kRoundTask:
      return "round task";
    case MessageKind::kUpdate:
      return "update";
    case MessageKind::kReject:
      return "reject";
    case MessageKind::kShutdown:
      return "shutdown";
    case MessageKind::kHello:
      return "hello";
    case MessageKind::kChallenge:
      return "challenge";
  }
  return "unknown";
}

Result<std::string> encode(const Message& message) {
  return encode_with(message, nullptr);
}

Result<std::vector<zmq::message_t>> encode_frames(const Message& message) {
  Tensors tensors;
  FEDVAR_ASSIGN_OR_RETURN(const std::string header, encode_with(message, &tensors));
  try {
    std::vector<zmq::message_t> frames;
    frames.reserve(1 + tensors.size());
    frames.emplace_back(header.data(), header.size());
    for (torch::Tensor& tensor : tensors) {
      if (tensor.nbytes() == 0) {
        frames.emplace_back();
        continue;
      }
      auto keep = std::make_unique<torch::Tensor>(std::move(tensor));
      frames.emplace_back(keep->data_ptr(), keep->nbytes(), &release_tensor, keep.get());
      keep.release();  // now owned by the frame
    }
    return frames;
  } catch (const zmq::error_t& e) {
    return Status::Internal(std::string("building ZeroMQ frames: ") + e.what());
  } catch (const std::bad_alloc&) {
    return Status::Internal("out of memory building ZeroMQ frames");
  }
}

Status validate_against(const TensorMap& update, const TensorMap& global) {
  return check_same_layout(update, global);
}

}  // namespace fedvar::protocol
