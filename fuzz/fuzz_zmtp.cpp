// Fuzzes ZmtpReader (protocol/zmtp.h), the parser of a peer's raw ZMTP bytes.
// The first byte sets how the rest arrives (in pieces of 1..64 bytes), as a
// socket may split it anywhere. Whatever the bytes, each message popped stays
// within the limits or is refused with no frames held.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "protocol/zmtp.h"

namespace {

namespace protocol = fedvar::protocol;
using fedvar::fuzz::check;

constexpr protocol::MessageLimits kLimits{/*max_frames=*/3, /*max_bytes=*/4096};

void check_popped(protocol::ZmtpReader& reader) {
  while (std::optional<protocol::ZmtpMessage> m = reader.pop()) {
    if (!m->refused.empty()) {
      check(m->frames.empty(), "a refused message holds frames");
      continue;
    }
    check(m->frames.size() <= kLimits.max_frames, "a message over max_frames");
    uint64_t bytes = 0;
    for (const auto& frame : m->frames) bytes += frame.size();
    check(bytes <= kLimits.max_bytes, "a message over max_bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  protocol::ZmtpReader reader(kLimits);
  while (!rest.empty()) {
    const size_t n = std::min(piece, rest.size());
    const fedvar::Status status = reader.feed(rest.substr(0, n));
    rest.remove_prefix(n);
    check_popped(reader);
    if (!status.ok()) break;  // the connection would be closed here
  }
  return 0;
}
