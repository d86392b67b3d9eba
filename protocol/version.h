// The wire protocol's version and message kinds (as zguide's mdp.h). Both are
// part of the format: kinds are never renumbered, only appended; a change to
// any message's fields bumps kProtocolVersion.
#pragma once

#include <cstdint>

namespace fedvar::protocol {

// Sent in every message; a peer rejects any other value. 2: each client
// signs under its own key, derived from the federation key (auth.h).
constexpr uint32_t kProtocolVersion = 2;

// The "kind" field of every message. Values are fixed forever.
enum class MessageKind : uint8_t {
  kJoin = 1,       // client -> server: I exist, with this much data
  kRoundTask = 2,  // server -> client: train this global model
  kUpdate = 3,     // client -> server: my trained weights for a round
  kReject = 4,     // either way: your last message was refused, and why
  kShutdown = 5,   // server -> client: stop
};

}  // namespace fedvar::protocol
