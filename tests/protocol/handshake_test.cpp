// The join handshake (protocol/handshake.h) and the kinds that travel
// unsigned (protocol/channel.h): a join is admitted only with the nonce last
// sent to its own connection, once, in this run; a hello, challenge or
// reject carries no tag, and every other kind must carry a valid one.
#include "protocol/handshake.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>
#include <zmq.hpp>

#include "protocol/auth.h"
#include "protocol/channel.h"

namespace fedvar::protocol {
namespace {

const std::string kKey = "handshake-test-client-key";

void expect_refused(const Status& status, const std::string& reason) {
  ASSERT_FALSE(status.ok()) << "admitted; expected: " << reason;
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find(reason), std::string::npos) << status.message();
}

TEST(HandshakeTest, AdmitsAJoinOnlyWithItsConnectionsNonceOnce) {
  auto server = Handshake::start();
  auto other_run = Handshake::start();
  ASSERT_TRUE(server.ok() && other_run.ok());
  Handshake& hs = **server;
  EXPECT_EQ(hs.run_id().size(), kRunIdBytes);
  EXPECT_NE(hs.run_id(), (*other_run)->run_id());
  const Challenge a = hs.challenge("conn-a").value();
  const Challenge b = hs.challenge("conn-b").value();
  EXPECT_EQ(a.run_id, hs.run_id());
  EXPECT_EQ(a.nonce.size(), kNonceBytes);
  EXPECT_NE(a.nonce, b.nonce);
  // Asked again before it is answered, a connection gets the same challenge.
  EXPECT_EQ(hs.challenge("conn-a").value().nonce, a.nonce);

  const Join alice{"alice", 5, a.run_id, a.nonce};
  // Replayed on another connection: refused there, and that connection's
  // own challenge is used up by the attempt.
  expect_refused(hs.admit("conn-b", alice), "not the one last sent to this connection");
  expect_refused(hs.admit("conn-b", alice), "answers no challenge");
  expect_refused(hs.admit("conn-c", alice), "answers no challenge");
  EXPECT_TRUE(hs.admit("conn-a", alice).ok());
  expect_refused(hs.admit("conn-a", alice), "answers no challenge");  // once

  const Challenge again = hs.challenge("conn-a").value();
  EXPECT_NE(again.nonce, a.nonce);
  expect_refused(
      hs.admit("conn-a", Join{"alice", 5, (*other_run)->run_id(), again.nonce}),
      "another run");
  const Challenge closed = hs.challenge("conn-d").value();
  hs.forget("conn-d");
  expect_refused(hs.admit("conn-d", Join{"dora", 5, closed.run_id, closed.nonce}),
                 "answers no challenge");
  EXPECT_EQ(hs.pending(), 0u);
}

// The frames of `message` as open_message sees them, with `tag` last.
struct Wire {
  std::vector<std::string> frames;
  std::vector<std::string_view> views() const {
    return std::vector<std::string_view>(frames.begin(), frames.end());
  }
};

Wire on_the_wire(const Message& message, const std::string& tag_key) {
  auto encoded = encode_message(message);
  EXPECT_TRUE(encoded.ok());
  Wire wire;
  for (const zmq::message_t& f : encoded->frames) wire.frames.push_back(f.to_string());
  wire.frames.push_back(tag_key.empty() ? "" : sign(encoded->digest, tag_key).value());
  return wire;
}

TEST(UnsignedKindsTest, OnlyHelloChallengeAndRejectTravelWithoutATag) {
  const KeyForClient key_for = [](std::string_view) -> Result<std::string> {
    return kKey;
  };
  const std::string run(kRunIdBytes, 'r');
  const std::string nonce(kNonceBytes, 'n');
  for (const Message& m :
       {Message(Hello{}), Message(Challenge{run, nonce}), Message(Reject{"no"})}) {
    SCOPED_TRACE(kind_name(kind_of(m)));
    const Received plain = open_message(on_the_wire(m, "").views(), key_for);
    ASSERT_TRUE(plain.message.ok()) << plain.message.status().message();
    EXPECT_FALSE(plain.authenticated);
    const Received tagged = open_message(on_the_wire(m, kKey).views(), key_for);
    ASSERT_FALSE(tagged.message.ok());
    EXPECT_NE(tagged.message.status().message().find("travels unsigned"),
              std::string::npos);
  }
  const Join join{"alice", 5, run, nonce};
  const Received bare = open_message(on_the_wire(join, "").views(), key_for);
  ASSERT_FALSE(bare.message.ok());
  EXPECT_NE(bare.message.status().message().find("a join must be signed"),
            std::string::npos)
      << bare.message.status().message();
  const Received forged = open_message(on_the_wire(join, "another key").views(), key_for);
  ASSERT_FALSE(forged.message.ok());
  EXPECT_NE(forged.message.status().message().find("authentication failed"),
            std::string::npos);
  const Received genuine = open_message(on_the_wire(join, kKey).views(), key_for);
  ASSERT_TRUE(genuine.message.ok()) << genuine.message.status().message();
  EXPECT_TRUE(genuine.authenticated);
  EXPECT_EQ(genuine.client_id, "alice");
}

// send_message leaves an unsigned kind's tag frame empty whatever the key.
TEST(UnsignedKindsTest, SendMessageSendsNoTagForAnUnsignedKind) {
  zmq::context_t context;
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.set(zmq::sockopt::rcvtimeo, 10000);
  router.bind("tcp://127.0.0.1:*");
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(router.get(zmq::sockopt::last_endpoint));
  ASSERT_TRUE(send_message(dealer, Hello{}, kKey).ok());
  zmq::message_t identity, header, tag;
  ASSERT_TRUE(router.recv(identity));
  ASSERT_TRUE(router.recv(header));
  ASSERT_TRUE(header.more());
  ASSERT_TRUE(router.recv(tag));
  EXPECT_FALSE(tag.more());
  EXPECT_EQ(tag.size(), 0u);
}

}  // namespace
}  // namespace fedvar::protocol
