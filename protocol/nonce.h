// The fresh values that bind signed messages to one run of the server and to
// one connection: run ids and challenge nonces, drawn from OpenSSL's CSPRNG
// (RAND_bytes), so that no recorded message verifies in another run or
// answers another connection's challenge.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"

namespace fedvar::protocol {

// `count` unpredictable bytes (kRunIdBytes, kNonceBytes from messages.h).
// kInternal when OpenSSL cannot draw them.
Result<std::string> random_bytes(size_t count);

}  // namespace fedvar::protocol
