// What a join is bound to (issue #20): the challenge its connection was sent
// in this run. A join recorded and replayed from another connection does not
// move the client's slot; refusals of messages that have not shown whose they
// are go unsigned; a client whose connection closed stops counting toward
// --min-clients. A real `fedvar serve` runs on loopback; the clients spoken
// by hand are DEALERs in this process, the others `fedvar client` processes.
#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <iterator>
#include <string>
#include <vector>

#include "tests/aggregator/serve_fixture.h"
#include "tests/aggregator/wire_client.h"

namespace fedvar {
namespace {

using testing::await_endpoint;
using testing::await_text;
using testing::client_key_of;
using testing::connect_dealer;
using testing::expect_next;
using testing::join_server;
using testing::next_message;
using testing::read_jsonl;
using testing::send_frames;
using testing::start_client;
using testing::start_server;
using testing::TempDir;

std::string log_of(const TempDir& dir) {
  auto text = read_file(dir.file("serve.log"));
  return text.ok() ? text.value() : "(no server log)";
}

// The next message on `socket` must be an unsigned reject saying `reason`.
void expect_unsigned_reject(zmq::socket_t& socket, const std::string& reason) {
  auto received = next_message(socket, client_key_of("alice"));
  ASSERT_TRUE(received.ok()) << "no answer: " << received.status().message();
  ASSERT_TRUE(received->message.ok()) << received->message.status().message();
  const auto* reject = std::get_if<protocol::Reject>(&received->message.value());
  ASSERT_NE(reject, nullptr);
  EXPECT_FALSE(received->authenticated);
  EXPECT_NE(reject->reason.find(reason), std::string::npos) << reject->reason;
}

TEST(JoinReplayTest, AJoinReplayedFromAnotherConnectionDoesNotTakeTheSlot) {
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "1", "--min-clients", "2"});
  const std::string endpoint = await_endpoint(dir);
  ASSERT_FALSE(endpoint.empty()) << log_of(dir);
  const std::string key = client_key_of("alice");
  zmq::context_t context;
  zmq::socket_t alice = connect_dealer(context, endpoint);
  auto recorded = join_server(alice, "alice", 32, key);
  ASSERT_TRUE(recorded.ok()) << recorded.status().message();
  ASSERT_TRUE(await_text(dir.file("serve.log"), "client alice joined", 30))
      << log_of(dir);

  // Alice's join, byte for byte, from another connection: first with no
  // challenge of its own, then after asking for one.
  zmq::socket_t mallory = connect_dealer(context, endpoint, 10000);
  ASSERT_TRUE(send_frames(mallory, *recorded));
  expect_unsigned_reject(mallory, "answers no challenge sent to this connection");
  ASSERT_TRUE(protocol::send_message(mallory, protocol::Hello{}, "").ok());
  ASSERT_TRUE(expect_next<protocol::Challenge>(mallory, "").ok());
  ASSERT_TRUE(send_frames(mallory, *recorded));
  expect_unsigned_reject(mallory, "not the one last sent to this connection");

  // The round starts when a second client joins; alice's task comes to
  // alice's connection, and her update completes the round.
  auto bob = start_client(dir, endpoint, 1, 2);
  auto task = expect_next<protocol::RoundTask>(alice, key);
  ASSERT_TRUE(task.ok()) << task.status().message() << "\n" << log_of(dir);
  const protocol::Update update{task->round, "alice", 32, task->tensors, task->run_id};
  ASSERT_TRUE(protocol::send_message(alice, update, key).ok());
  const auto code = server->wait_for(60);
  ASSERT_TRUE(code.has_value()) << log_of(dir);
  EXPECT_EQ(*code, 0) << log_of(dir);
  EXPECT_TRUE(expect_next<protocol::Shutdown>(alice, key).ok());

  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["selected"], nlohmann::json::array({"alice", "client-1"}));
  EXPECT_EQ(lines[0]["updates"]["received"], 2);
  EXPECT_EQ(lines[0]["updates"]["missing"], 0);
  // Nothing but the two rejects and the challenge came to the replayer.
  mallory.set(zmq::sockopt::rcvtimeo, 200);
  EXPECT_FALSE(next_message(mallory, key).ok());
}

TEST(JoinReplayTest, RefusalsAndChallengesAreNotSignedUnderANamedKey) {
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "1", "--min-clients", "1"});
  const std::string endpoint = await_endpoint(dir);
  ASSERT_FALSE(endpoint.empty()) << log_of(dir);
  zmq::context_t context;
  zmq::socket_t mallory = connect_dealer(context, endpoint, 10000);
  // A join naming alice under a key that is not hers: the refusal must not
  // be signed under alice's key (mallory could hand it to alice as the
  // server's word), nor under any other.
  ASSERT_TRUE(protocol::send_message(mallory, protocol::Hello{}, "").ok());
  auto challenge = expect_next<protocol::Challenge>(mallory, "");
  ASSERT_TRUE(challenge.ok()) << challenge.status().message();
  const protocol::Join forged{"alice", 32, challenge->run_id, challenge->nonce};
  ASSERT_TRUE(protocol::send_message(mallory, forged, client_key_of("mallory")).ok());
  std::vector<zmq::message_t> reply;
  ASSERT_TRUE(zmq::recv_multipart(mallory, std::back_inserter(reply))) << log_of(dir);
  ASSERT_EQ(reply.size(), 2u);
  EXPECT_EQ(reply.back().size(), 0u) << "the reject carries a tag";
  auto reject = protocol::decode(reply.front().to_string_view());
  ASSERT_TRUE(reject.ok()) << reject.status().message();
  ASSERT_TRUE(std::holds_alternative<protocol::Reject>(reject.value()));
  EXPECT_NE(
      std::get<protocol::Reject>(reject.value()).reason.find("authentication failed"),
      std::string::npos);
}

TEST(JoinReplayTest, AClientWhoseConnectionClosedDoesNotCountTowardMinClients) {
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "1", "--min-clients", "2"});
  const std::string endpoint = await_endpoint(dir);
  ASSERT_FALSE(endpoint.empty()) << log_of(dir);
  {
    zmq::context_t context;
    zmq::socket_t ghost = connect_dealer(context, endpoint);
    ASSERT_TRUE(join_server(ghost, "ghost", 32, client_key_of("ghost")).ok());
    ASSERT_TRUE(await_text(dir.file("serve.log"), "client ghost joined", 30))
        << log_of(dir);
  }  // the ghost's connection closes
  ASSERT_TRUE(await_text(dir.file("serve.log"), "client ghost's connection closed", 30))
      << log_of(dir);
  auto c0 = start_client(dir, endpoint, 0, 2);
  ASSERT_TRUE(await_text(dir.file("serve.log"), "client client-0 joined", 60))
      << log_of(dir);
  EXPECT_FALSE(await_text(dir.file("serve.log"), "round 1: sending", 2))
      << "the round started with one live client of --min-clients 2\n"
      << log_of(dir);
  auto c1 = start_client(dir, endpoint, 1, 2);
  const auto code = server->wait_for(60);
  ASSERT_TRUE(code.has_value()) << log_of(dir);
  EXPECT_EQ(*code, 0) << log_of(dir);
  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["selected"], nlohmann::json::array({"client-0", "client-1"}));
  EXPECT_EQ(lines[0]["updates"]["received"], 2);
  EXPECT_EQ(lines[0]["updates"]["missing"], 0);
}

}  // namespace
}  // namespace fedvar
