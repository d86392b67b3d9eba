// HMAC-SHA256 authentication of protocol messages. The server holds the
// federation key; each client holds only its own key, derived from the
// federation key and its client id (derive_client_key), and every message
// between the server and a client is signed under that client's key. So a
// participant cannot sign as another: a join or update verifies only under
// the key of the client id it carries. On the wire a message is
// [header][tensor frame]...[tag] (see encode_frames and sign_parts), after
// any ROUTER identity frame.
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

// What sign_parts signs: each part's length and SHA-256 digest. Computed once,
// it can be tagged under many keys (sign(digest_parts(parts), key)) without
// hashing the parts again, e.g. one model broadcast to many clients.
Result<std::string> digest_parts(const std::vector<std::string_view>& parts);

// The key of client `client_id` in a federation: the hex HMAC-SHA256, under
// `federation_key`, of "fedvar client key v1:" + client_id (64 characters, so
// that it fits a key file or an environment variable). Errors as sign().
Result<std::string> derive_client_key(std::string_view federation_key,
                                      std::string_view client_id);

}  // namespace fedvar::protocol
