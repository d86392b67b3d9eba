// HMAC-SHA256 through OpenSSL's one-shot HMAC() (not deprecated in 3.x).
#include "protocol/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <cstdint>

namespace fedvar::protocol {

Result<std::string> sign(std::string_view payload, std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("HMAC key is empty");
  if (key.size() > static_cast<size_t>(INT_MAX)) {
    return Status::InvalidArgument("HMAC key is too long");
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const unsigned char* data = reinterpret_cast<const unsigned char*>(payload.data());
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data, payload.size(),
           digest, &digest_len) == nullptr ||
      digest_len != kTagBytes) {
    return Status::Internal("OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), digest_len);
}

namespace {

Status compare_tags(const std::string& expected, std::string_view tag) {
  if (tag.size() != kTagBytes) {
    return Status::InvalidArgument("HMAC tag has " + std::to_string(tag.size()) +
                                   " bytes, expected " + std::to_string(kTagBytes));
  }
  if (CRYPTO_memcmp(expected.data(), tag.data(), kTagBytes) != 0) {
    return Status::InvalidArgument("HMAC tag does not match the payload");
  }
  return Status::Ok();
}

}  // namespace

Status verify(std::string_view payload, std::string_view tag, std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string expected, sign(payload, key));
  return compare_tags(expected, tag);
}

Result<std::string> digest_parts(const std::vector<std::string_view>& parts) {
  std::string summary;
  for (std::string_view part : parts) {
    uint64_t size = part.size();
    for (int i = 0; i < 8; ++i, size >>= 8) summary += static_cast<char>(size & 0xff);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (EVP_Digest(part.data(), part.size(), digest, &digest_len, EVP_sha256(),
                   nullptr) != 1) {
      return Status::Internal("OpenSSL SHA-256 failed");
    }
    summary.append(reinterpret_cast<const char*>(digest), digest_len);
  }
  return summary;
}

Result<std::string> sign_parts(const std::vector<std::string_view>& parts,
                               std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string summary, digest_parts(parts));
  return sign(summary, key);
}

Status verify_parts(const std::vector<std::string_view>& parts, std::string_view tag,
                    std::string_view key) {
  FEDVAR_ASSIGN_OR_RETURN(const std::string expected, sign_parts(parts, key));
  return compare_tags(expected, tag);
}

Result<std::string> derive_client_key(std::string_view federation_key,
                                      std::string_view client_id) {
  FEDVAR_ASSIGN_OR_RETURN(
      const std::string raw,
      sign("fedvar client key v1:" + std::string(client_id), federation_key));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

}  // namespace fedvar::protocol
