// HMAC-SHA256 authentication of protocol messages with a key shared by the
// server and its clients. On the wire a message is two ZeroMQ frames (after
// any ROUTER identity frame): [payload = encode(message)] [tag = sign(payload)].
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fedvar::protocol {

// Bytes in a tag (one SHA-256 digest).
constexpr size_t kTagBytes = 32;

// The HMAC-SHA256 tag of `payload` under `key` (kTagBytes raw bytes).
// An empty key is kInvalidArgument; an OpenSSL failure is kInternal.
Result<std::string> sign(std::string_view payload, std::string_view key);

// Ok iff `tag` is the tag of `payload` under `key`, compared in constant time
// (CRYPTO_memcmp). A wrong length or mismatch is kInvalidArgument.
Status verify(std::string_view payload, std::string_view tag, std::string_view key);

// The tag of a multi-frame message (see encode_frames): the HMAC-SHA256, under
// `key`, of each part's 8-byte little-endian length and SHA-256 digest, in
// order, so that moving bytes between parts changes the tag. Errors as sign().
Result<std::string> sign_parts(const std::vector<std::string_view>& parts,
                               std::string_view key);

// Ok iff `tag` is sign_parts(parts, key), compared in constant time.
Status verify_parts(const std::vector<std::string_view>& parts, std::string_view tag,
                    std::string_view key);

}  // namespace fedvar::protocol
