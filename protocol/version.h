// The wire protocol's version and message kinds (as zguide's mdp.h). Both are
// part of the format: kinds are never renumbered, only appended; a change to
// any message's fields bumps kProtocolVersion.
#pragma once

#include <cstdint>

namespace fedvar::protocol {

// Sent in every message; a peer rejects any other value. 3: a client joins
// by answering the server's challenge (hello, challenge, join), and every
// signed message names the server's run (and an update its round).
constexpr uint32_t kProtocolVersion = 3;

// The "kind" field of every message. Values are fixed forever.
enum class MessageKind : uint8_t {
  kJoin = 1,       // client -> server: I exist, with this much data (signs a challenge)
  kRoundTask = 2,  // server -> client: train this global model
  kUpdate = 3,     // client -> server: my trained weights for a round of a run
  kReject = 4,     // server -> client, unsigned: your last message was refused, and why
  kShutdown = 5,   // server -> client: stop
  kHello = 6,      // client -> server, unsigned: challenge me, I want to join
  kChallenge = 7,  // server -> client, unsigned: join this run, signing this nonce
};

// Whether messages of `kind` travel unsigned (an empty tag frame): the hello
// and challenge before a join, and rejects, which a client only logs before
// it joins again. A message of any other kind must carry a valid tag, and one
// of these kinds must carry none.
constexpr bool is_unsigned_kind(MessageKind kind) {
  return kind == MessageKind::kHello || kind == MessageKind::kChallenge ||
         kind == MessageKind::kReject;
}

}  // namespace fedvar::protocol
