// The messages between the federated server and its clients, and their wire
// encoding: one MessagePack map per message, {"version", "kind", fields...};
// run ids and nonces are MessagePack bin.
// A tensor is a map {"name", "dtype" ("F32", "I64", ... as safetensors),
// "shape": [dims], "data": bin of the raw little-endian bytes}.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "core/state_dict.h"
#include "core/status.h"
#include "protocol/version.h"

namespace fedvar::protocol {

// A model's state dict by (torchvision) name, as TensorFile::tensors.
using TensorMap = StateDict;

// Bytes in a run id (drawn once per server run) and in a challenge's nonce
// (drawn per connection); decode() refuses any other length.
constexpr size_t kRunIdBytes = 16;
constexpr size_t kNonceBytes = 16;

// client -> server, unsigned: asks for a challenge to join with.
struct Hello {};

// server -> client, unsigned: what a join on this connection must sign. The
// nonce is good for one join, on this connection only.
struct Challenge {
  std::string run_id;  // kRunIdBytes: the server's run
  std::string nonce;   // kNonceBytes: fresh for this connection
};

// client -> server: announces a client and how many training samples it
// holds, answering the challenge the server sent this connection.
struct Join {
  std::string client_id;    // non-empty, at most kMaxClientIdBytes
  int64_t num_samples = 0;  // > 0
  std::string run_id;       // the challenge's (kRunIdBytes)
  std::string nonce;        // the challenge's (kNonceBytes)
};

// How a client trains locally in one round; validated by decode().
struct TrainingConfig {
  int64_t epochs = 1;         // local epochs, > 0
  double lr = 0.01;           // SGD learning rate, finite and > 0
  int64_t batch_size = 64;    // > 0
  uint64_t seed = 0;          // the client's RNG seed for this round
  double momentum = 0.0;      // SGD momentum, in [0, 1)
  double weight_decay = 0.0;  // L2 penalty, finite and >= 0
};

// server -> client: the global model of a round and how to train on it.
struct RoundTask {
  int64_t round = 0;  // >= 0
  TensorMap tensors;  // the global state dict
  TrainingConfig config;
  std::string run_id;  // kRunIdBytes: the run the task belongs to
};

// client -> server: the client's state dict after local training.
struct Update {
  int64_t round = 0;  // >= 0, the round of the RoundTask it answers
  std::string client_id;
  int64_t num_samples = 0;  // > 0, the weight of this update in FedAvg
  TensorMap tensors;
  std::string run_id;  // kRunIdBytes: the run of the RoundTask it answers
};

// server -> client, unsigned: the peer's last message was refused.
struct Reject {
  std::string reason;
};

// server -> client: the run is over.
struct Shutdown {
  std::string run_id;  // kRunIdBytes: the run that is over
};

// Any message; its wire kind is kind_of(), not the variant's index.
using Message = std::variant<Join, RoundTask, Update, Reject, Shutdown, Hello, Challenge>;

// Limits decode() enforces on untrusted input.
constexpr size_t kMaxClientIdBytes = 256;
constexpr size_t kMaxTensors = 4096;
constexpr size_t kMaxTensorBytes = size_t{1} << 31;

// The kind a message is sent as.
MessageKind kind_of(const Message& message);

// The kind's name for people ("join", "round task", ...).
std::string_view kind_name(MessageKind kind);

// The MessagePack bytes of `message`. Tensors are copied from wherever they
// live (made contiguous on CPU). An undefined tensor or a dtype outside the
// safetensors set is kInvalidArgument. Field values are not checked here.
Result<std::string> encode(const Message& message);

// Parses and validates untrusted bytes; never throws. Any defect (not
// MessagePack, wrong version, unknown kind, a missing, mistyped or unexpected
// field, a bad value, an unknown dtype, a shape that does not match its byte
// count, a NaN/Inf float) is kInvalidArgument saying which. Tensors are CPU.
Result<Message> decode(std::string_view bytes);

// Zero-copy form for ZeroMQ: frame 0 is the message as encode() writes it
// except that each tensor's "data" is the index (1, 2, ...) of the frame that
// holds its bytes. Tensor frames point into the tensors' own CPU memory, which
// each frame keeps alive until ZeroMQ has sent it: do not modify the tensors in
// place meanwhile. Sign with sign_parts(). Errors as encode().
Result<std::vector<zmq::message_t>> encode_frames(const Message& message);

// Decodes frames from encode_frames (e.g. views of received zmq::message_t
// data) with every check of decode(); a frame no tensor uses is also an error.
Result<Message> decode_frames(const std::vector<std::string_view>& frames);

// What a message's header says before it is verified: its kind, and the
// client id a join or update claims ("" for the other kinds).
struct Claim {
  MessageKind kind = MessageKind::kReject;
  std::string client_id;
};

// The claim of a multi-frame message, read from its header alone, without
// its tensors: to choose the key to verify the message under (or to see that
// it travels unsigned) before decoding it. Errors as decode().
Result<Claim> read_claim(std::string_view header);

// Ok iff `update` has exactly the names of `global`, each with the same dtype
// and shape; otherwise kInvalidArgument naming the first difference.
Status validate_against(const TensorMap& update, const TensorMap& global);

}  // namespace fedvar::protocol
