// Lower-case hex of raw bytes: run ids, nonces and request ids in logs and
// reports.
#pragma once

#include <string>
#include <string_view>

namespace fedvar::protocol {

inline std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return hex;
}

}  // namespace fedvar::protocol
