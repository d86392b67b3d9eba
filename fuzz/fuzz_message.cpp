// Fuzzes the protocol's decoders (protocol/messages.h) with untrusted bytes:
// decode() of the whole input, and read_claim() and decode_frames() of the
// input cut into frames at each 0xc1 byte (a byte MessagePack never uses, so
// a seed's header ends there). A message that decodes must encode again, and
// the copy decode to a message of the same kind; its header's claim must be
// what it decodes to.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "protocol/messages.h"

namespace {

namespace protocol = fedvar::protocol;
using fedvar::fuzz::check;

constexpr char kFrameSeparator = '\xc1';

std::vector<std::string_view> split_frames(std::string_view bytes) {
  std::vector<std::string_view> frames;
  size_t start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != kFrameSeparator) continue;
    frames.push_back(bytes.substr(start, i - start));
    start = i + 1;
  }
  frames.push_back(bytes.substr(start));
  return frames;
}

// The client id a join or update carries ("" for the other kinds).
std::string client_id_of(const protocol::Message& message) {
  if (const auto* join = std::get_if<protocol::Join>(&message)) return join->client_id;
  if (const auto* update = std::get_if<protocol::Update>(&message)) {
    return update->client_id;
  }
  return "";
}

void check_round_trip(const protocol::Message& message) {
  fedvar::Result<std::string> bytes = protocol::encode(message);
  check(bytes.ok(), "a decoded message does not encode: " + bytes.status().message());
  fedvar::Result<protocol::Message> again = protocol::decode(bytes.value());
  check(again.ok(), "an encoded message does not decode: " + again.status().message());
  check(protocol::kind_of(again.value()) == protocol::kind_of(message),
        "a message changed kind in a round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  fedvar::Result<protocol::Message> whole = protocol::decode(bytes);
  if (whole.ok()) check_round_trip(whole.value());

  const std::vector<std::string_view> frames = split_frames(bytes);
  fedvar::Result<protocol::Claim> claim = protocol::read_claim(frames[0]);
  fedvar::Result<protocol::Message> framed = protocol::decode_frames(frames);
  if (framed.ok()) {
    // The server picks the key to verify under (or none) by the claim: it
    // must be the kind and id of the message that then decodes.
    check(claim.ok() && claim->kind == protocol::kind_of(framed.value()) &&
              claim->client_id == client_id_of(framed.value()),
          "a message's claim is not what it decodes to");
    check_round_trip(framed.value());
  }
  return 0;
}
