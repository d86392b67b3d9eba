// What an update is bound to (issue #20): the run of the server and the
// round it answers. An update recorded in one run is refused by a later run
// of a server with the same key, and one recorded in round 1 is refused in
// round 2, each with its reason, even on the connection of the client that
// made it (where someone on the path would inject it). A real `fedvar serve`
// runs on loopback; the client is a DEALER in this process.
#include <gtest/gtest.h>
#include <zmq.hpp>

#include <string>

#include "tests/aggregator/serve_fixture.h"
#include "tests/aggregator/wire_client.h"

namespace fedvar {
namespace {

using testing::await_endpoint;
using testing::client_key_of;
using testing::connect_dealer;
using testing::expect_next;
using testing::Frames;
using testing::join_server;
using testing::read_jsonl;
using testing::send_frames;
using testing::signed_frames;
using testing::start_server;
using testing::TempDir;

const std::string kAlice = "alice";

std::string log_of(const TempDir& dir) {
  auto text = read_file(dir.file("serve.log"));
  return text.ok() ? text.value() : "(no server log)";
}

// Alice's honest answer to `task`: the model as it came, signed.
Frames answer(const protocol::RoundTask& task) {
  return signed_frames(
      protocol::Update{task.round, kAlice, 32, task.tensors, task.run_id},
      client_key_of(kAlice));
}

// Alice's connection to the server of `dir`, joined; or why not.
Result<zmq::socket_t> join_alice(zmq::context_t& context, const TempDir& dir) {
  const std::string endpoint = await_endpoint(dir);
  if (endpoint.empty()) return Status::Unavailable("no endpoint\n" + log_of(dir));
  zmq::socket_t socket = connect_dealer(context, endpoint);
  FEDVAR_RETURN_IF_ERROR(join_server(socket, kAlice, 32, client_key_of(kAlice)).status());
  return socket;
}

// The server of `dir` ends well and its metrics have `rounds` lines.
std::vector<nlohmann::json> finished(testing::Process& server, const TempDir& dir,
                                     size_t rounds) {
  const auto code = server.wait_for(60);
  EXPECT_TRUE(code.has_value() && *code == 0) << log_of(dir);
  auto lines = read_jsonl(dir.file("metrics.jsonl"));
  EXPECT_EQ(lines.size(), rounds);
  return lines;
}

TEST(UpdateReplayTest, AnUpdateFromAnEarlierRunIsRefused) {
  const std::string key = client_key_of(kAlice);
  zmq::context_t context;
  Frames recorded;
  {
    TempDir first;
    auto server = start_server(first, {"--rounds", "1", "--min-clients", "1"});
    auto alice = join_alice(context, first);
    ASSERT_TRUE(alice.ok()) << alice.status().message();
    auto task = expect_next<protocol::RoundTask>(*alice, key);
    ASSERT_TRUE(task.ok()) << task.status().message() << log_of(first);
    recorded = answer(*task);
    ASSERT_TRUE(send_frames(*alice, recorded));
    const auto lines = finished(*server, first, 1);
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0]["updates"]["received"], 1);
  }
  TempDir second;  // the same federation key, a new run
  auto server = start_server(second, {"--rounds", "1", "--min-clients", "1"});
  auto alice = join_alice(context, second);
  ASSERT_TRUE(alice.ok()) << alice.status().message();
  auto task = expect_next<protocol::RoundTask>(*alice, key);
  ASSERT_TRUE(task.ok()) << task.status().message() << log_of(second);
  ASSERT_EQ(task->round, 1);
  ASSERT_TRUE(send_frames(*alice, recorded));  // round 1 of the first run
  auto refused = expect_next<protocol::Reject>(*alice, key);
  ASSERT_TRUE(refused.ok()) << refused.status().message();
  EXPECT_NE(refused->reason.find("update is for another run"), std::string::npos)
      << refused->reason;
  ASSERT_TRUE(send_frames(*alice, answer(*task)));
  const auto lines = finished(*server, second, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["updates"]["received"], 1);
  EXPECT_EQ(lines[0]["updates"]["rejected"], 1);
  EXPECT_NE(lines[0]["rejections"].dump().find("alice: update is for another run"),
            std::string::npos)
      << lines[0]["rejections"].dump();
}

TEST(UpdateReplayTest, AnUpdateReplayedIntoALaterRoundIsRefused) {
  const std::string key = client_key_of(kAlice);
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "2", "--min-clients", "1"});
  zmq::context_t context;
  auto alice = join_alice(context, dir);
  ASSERT_TRUE(alice.ok()) << alice.status().message();
  auto first = expect_next<protocol::RoundTask>(*alice, key);
  ASSERT_TRUE(first.ok()) << first.status().message() << log_of(dir);
  const Frames recorded = answer(*first);
  ASSERT_TRUE(send_frames(*alice, recorded));
  auto second = expect_next<protocol::RoundTask>(*alice, key);
  ASSERT_TRUE(second.ok()) << second.status().message() << log_of(dir);
  ASSERT_EQ(second->round, 2);
  ASSERT_TRUE(send_frames(*alice, recorded));  // round 1's update, again
  auto refused = expect_next<protocol::Reject>(*alice, key);
  ASSERT_TRUE(refused.ok()) << refused.status().message();
  EXPECT_NE(refused->reason.find("update for round 1, but round 2 is open"),
            std::string::npos)
      << refused->reason;
  ASSERT_TRUE(send_frames(*alice, answer(*second)));
  const auto lines = finished(*server, dir, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["updates"]["received"], 1);
  EXPECT_EQ(lines[1]["updates"]["rejected"], 1);
}

}  // namespace
}  // namespace fedvar
