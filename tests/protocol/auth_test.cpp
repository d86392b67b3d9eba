#include "protocol/auth.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iterator>
#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "protocol/channel.h"
#include "protocol/messages.h"

namespace fedvar::protocol {
namespace {

const std::string kKey = "a shared key of thirty-two bytes";

// A DEALER connected to a ROUTER on loopback TCP (the server's side).
struct Loopback {
  explicit Loopback(const std::string& routing_id = "") {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::rcvtimeo, 10000);
    router.bind("tcp://127.0.0.1:*");
    dealer.set(zmq::sockopt::linger, 0);
    if (!routing_id.empty()) dealer.set(zmq::sockopt::routing_id, routing_id);
    dealer.connect(router.get(zmq::sockopt::last_endpoint));
  }
  zmq::context_t context;
  zmq::socket_t router{context, zmq::socket_type::router};
  zmq::socket_t dealer{context, zmq::socket_type::dealer};
};

std::string to_hex(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

TEST(AuthTest, MatchesRfc4231TestCase2) {
  Result<std::string> tag = sign("what do ya want for nothing?", "Jefe");
  ASSERT_TRUE(tag.ok()) << tag.status().message();
  EXPECT_EQ(to_hex(tag.value()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(AuthTest, VerifiesItsOwnTag) {
  const std::string payload = "payload bytes";
  Result<std::string> tag = sign(payload, kKey);
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tag.value().size(), kTagBytes);
  EXPECT_TRUE(verify(payload, tag.value(), kKey).ok());
}

TEST(AuthTest, RejectsFlippedBitsWrongKeyAndBadTags) {
  const std::string payload = "payload bytes";
  Result<std::string> signed_tag = sign(payload, kKey);
  ASSERT_TRUE(signed_tag.ok());
  const std::string tag = signed_tag.value();
  for (size_t bit = 0; bit < payload.size() * 8; ++bit) {
    std::string flipped = payload;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    EXPECT_FALSE(verify(flipped, tag, kKey).ok()) << "payload bit " << bit;
  }
  std::string bad_tag = tag;
  bad_tag[kTagBytes - 1] = static_cast<char>(bad_tag[kTagBytes - 1] ^ 1);
  EXPECT_FALSE(verify(payload, bad_tag, kKey).ok());
  const Status wrong_key = verify(payload, tag, "another key");
  EXPECT_EQ(wrong_key.code(), Code::kInvalidArgument);
  EXPECT_NE(wrong_key.message().find("does not match"), std::string::npos);
  const Status short_tag = verify(payload, tag.substr(1), kKey);
  EXPECT_NE(short_tag.message().find("31 bytes"), std::string::npos);
  EXPECT_FALSE(verify(payload, "", kKey).ok());
  EXPECT_FALSE(sign(payload, "").ok());
  EXPECT_FALSE(verify(payload, tag, "").ok());
}

TEST(AuthTest, SignsPartsWithTheirBoundaries) {
  Result<std::string> tag = sign_parts({"ab", "c"}, kKey);
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(tag.value().size(), kTagBytes);
  EXPECT_TRUE(verify_parts({"ab", "c"}, tag.value(), kKey).ok());
  EXPECT_FALSE(verify_parts({"a", "bc"}, tag.value(), kKey).ok());
  EXPECT_FALSE(verify_parts({"abc"}, tag.value(), kKey).ok());
  EXPECT_FALSE(verify_parts({"ab", "c", ""}, tag.value(), kKey).ok());
  EXPECT_FALSE(verify_parts({"ab", "c"}, tag.value(), "another key").ok());
}

// One digest, tagged under many keys, equals signing the parts under each.
TEST(AuthTest, DigestOnceThenTagEqualsSignParts) {
  Result<std::string> digest = digest_parts({"ab", "c"});
  ASSERT_TRUE(digest.ok());
  for (const std::string& key : {kKey, std::string("another key")}) {
    EXPECT_EQ(sign(digest.value(), key).value(), sign_parts({"ab", "c"}, key).value());
  }
  EXPECT_NE(digest.value(), digest_parts({"a", "bc"}).value());
}

// Each client's key is fixed by the federation key and its id, differs for
// every other id or federation key, and is 64 hex characters.
TEST(AuthTest, DerivedClientKeysAreDistinctAndStable) {
  Result<std::string> c1 = derive_client_key(kKey, "client-1");
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1.value().size(), 64u);
  EXPECT_EQ(c1.value().find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(c1.value(), derive_client_key(kKey, "client-1").value());
  EXPECT_NE(c1.value(), derive_client_key(kKey, "client-2").value());
  EXPECT_NE(c1.value(), derive_client_key(kKey, "client-10").value());
  EXPECT_NE(c1.value(), derive_client_key("another key", "client-1").value());
  EXPECT_NE(c1.value(), kKey);
  EXPECT_FALSE(derive_client_key("", "client-1").ok());
}

// The zero-copy form: [header][tensor]...[tag] from a DEALER to a ROUTER.
TEST(WireTest, SignedFramesCrossDealerToRouter) {
  Update update;
  update.round = 1;
  update.client_id = "client-9";
  update.num_samples = 32;
  update.run_id = std::string(kRunIdBytes, 'r');
  update.tensors["fc.weight"] = torch::randn({10, 16});
  update.tensors["bn1.num_batches_tracked"] = torch::tensor(int64_t{5});
  Result<std::vector<zmq::message_t>> frames = encode_frames(update);
  ASSERT_TRUE(frames.ok()) << frames.status().message();
  std::vector<std::string_view> parts;
  for (const zmq::message_t& f : frames.value()) parts.push_back(f.to_string_view());
  Result<std::string> tag = sign_parts(parts, kKey);
  ASSERT_TRUE(tag.ok());

  Loopback net;
  zmq::socket_t& router = net.router;
  zmq::socket_t& dealer = net.dealer;
  for (zmq::message_t& f : frames.value()) {
    ASSERT_TRUE(dealer.send(f, zmq::send_flags::sndmore));
  }
  ASSERT_TRUE(dealer.send(zmq::buffer(tag.value()), zmq::send_flags::none));

  std::vector<zmq::message_t> received;
  ASSERT_TRUE(zmq::recv_multipart(router, std::back_inserter(received)).has_value());
  ASSERT_EQ(received.size(), 1 + 3 + 1);  // identity, header, 2 tensors, tag
  std::vector<std::string_view> got;
  for (size_t i = 1; i + 1 < received.size(); ++i) {
    got.push_back(received[i].to_string_view());
  }
  ASSERT_TRUE(verify_parts(got, received.back().to_string_view(), kKey).ok());
  Result<Message> decoded = decode_frames(got);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  const Update& u = std::get<Update>(decoded.value());
  EXPECT_TRUE(torch::equal(u.tensors.at("fc.weight"), update.tensors.at("fc.weight")));
  EXPECT_EQ(u.tensors.at("bn1.num_batches_tracked").item<int64_t>(), 5);
}

// The wire format end to end: [payload][tag] from a DEALER reaches a ROUTER
// as [identity][payload][tag], verifies and decodes to the same Update.
TEST(WireTest, SignedUpdateCrossesDealerToRouter) {
  torch::manual_seed(0);
  Update update;
  update.round = 4;
  update.client_id = "client-7";
  update.num_samples = 600;
  update.run_id = std::string(kRunIdBytes, 'r');
  update.tensors["conv1.weight"] = torch::randn({8, 3, 3, 3});
  update.tensors["bn1.num_batches_tracked"] = torch::tensor(int64_t{12});
  Result<std::string> payload = encode(update);
  ASSERT_TRUE(payload.ok()) << payload.status().message();
  Result<std::string> tag = sign(payload.value(), kKey);
  ASSERT_TRUE(tag.ok());

  Loopback net("client-7");
  zmq::socket_t& router = net.router;
  zmq::socket_t& dealer = net.dealer;
  ASSERT_TRUE(dealer.send(zmq::buffer(payload.value()), zmq::send_flags::sndmore));
  ASSERT_TRUE(dealer.send(zmq::buffer(tag.value()), zmq::send_flags::none));

  std::vector<zmq::message_t> frames;
  const auto received = zmq::recv_multipart(router, std::back_inserter(frames));
  ASSERT_TRUE(received.has_value()) << "timed out";
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].to_string(), "client-7");
  const std::string_view wire_payload = frames[1].to_string_view();
  ASSERT_TRUE(verify(wire_payload, frames[2].to_string_view(), kKey).ok());
  Result<Message> decoded = decode(wire_payload);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  const Update& got = std::get<Update>(decoded.value());
  EXPECT_EQ(got.round, 4);
  EXPECT_EQ(got.client_id, "client-7");
  EXPECT_EQ(got.num_samples, 600);
  ASSERT_EQ(got.tensors.size(), 2u);
  EXPECT_TRUE(
      torch::equal(got.tensors.at("conv1.weight"), update.tensors.at("conv1.weight")));
  EXPECT_EQ(got.tensors.at("bn1.num_batches_tracked").item<int64_t>(), 12);
  EXPECT_TRUE(validate_against(got.tensors, update.tensors).ok());
}

// The server's receive: the key is chosen by the client id the message
// carries, so a join signed with client-2's key and claiming client-1 fails,
// and the same join claiming client-2 passes.
TEST(WireTest, ServerVerifiesUnderTheKeyOfTheClaimedClient) {
  Loopback net;
  zmq::socket_t& router = net.router;
  zmq::socket_t& dealer = net.dealer;
  const KeyForClient key_for = [](std::string_view id) {
    return derive_client_key(kKey, id);
  };
  const std::string key2 = derive_client_key(kKey, "client-2").value();
  const std::string run(kRunIdBytes, 'r');
  const std::string nonce(kNonceBytes, 'n');

  ASSERT_TRUE(send_message(dealer, Join{"client-1", 10, run, nonce}, key2).ok());
  Result<Received> forged = receive_message(router, key_for, true);
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->client_id, "client-1");
  ASSERT_FALSE(forged->message.ok());
  EXPECT_NE(forged->message.status().message().find("authentication failed"),
            std::string::npos);

  ASSERT_TRUE(send_message(dealer, Join{"client-2", 10, run, nonce}, key2).ok());
  Result<Received> genuine = receive_message(router, key_for, true);
  ASSERT_TRUE(genuine.ok() && genuine->message.ok());
  EXPECT_EQ(genuine->client_id, "client-2");
  EXPECT_EQ(std::get<Join>(genuine->message.value()).num_samples, 10);
}

}  // namespace
}  // namespace fedvar::protocol
