#include "protocol/nonce.h"

#include <openssl/rand.h>

#include <climits>

namespace fedvar::protocol {

Result<std::string> random_bytes(size_t count) {
  if (count > static_cast<size_t>(INT_MAX)) {
    return Status::InvalidArgument("too many random bytes asked for");
  }
  std::string bytes(count, '\0');
  if (count > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()),
                              static_cast<int>(count)) != 1) {
    return Status::Internal("OpenSSL RAND_bytes failed");
  }
  return bytes;
}

}  // namespace fedvar::protocol
