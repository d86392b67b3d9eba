// What unauthenticated peers cannot do to `fedvar serve` (issue #20): stall
// its only thread by never reading the rejects it sends, or make it hold a
// multi-frame message of any size. Each test runs a real server and two
// honest clients on loopback next to a flooder in this process, and checks
// that the honest round completes.
#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstdint>
#include <iterator>
#include <vector>

#include "protocol/channel.h"
#include "tests/aggregator/serve_fixture.h"

namespace fedvar {
namespace {

using testing::await_endpoint;
using testing::proc_status_kib;
using testing::read_jsonl;
using testing::start_client;
using testing::start_server;
using testing::TempDir;

// More unauthenticated joins than a server's send queues, the flooder's tiny
// receive buffer and the kernel's socket buffers hold together (a blocking
// server stalled after about 17,500 rejects).
constexpr int kFloodJoins = 30000;
// How long the honest round may take once the clients start.
constexpr double kRoundSeconds = 45;

std::string log_of(const TempDir& dir) {
  auto text = read_file(dir.file("serve.log"));
  if (!text.ok()) return "(no server log)";
  const std::string& log = text.value();
  return log.size() > 3000 ? "..." + log.substr(log.size() - 3000) : log;
}

// The round was made of both honest clients' updates.
void expect_honest_round(const TempDir& dir) {
  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["updates"]["received"], 2);
  EXPECT_TRUE(lines[0]["aggregated"].get<bool>());
}

TEST(ServerFloodTest, APeerThatNeverReadsDoesNotStallTheServer) {
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "1", "--min-clients", "2"});
  const std::string endpoint = await_endpoint(dir);
  ASSERT_FALSE(endpoint.empty()) << log_of(dir);

  zmq::context_t context;
  zmq::socket_t flooder(context, zmq::socket_type::dealer);
  flooder.set(zmq::sockopt::linger, 0);
  flooder.set(zmq::sockopt::rcvbuf, 1024);  // it reads nothing and holds little
  flooder.set(zmq::sockopt::rcvhwm, 1);
  flooder.set(zmq::sockopt::sndtimeo, 5000);  // this test must not hang either
  flooder.connect(endpoint);
  // Signed under a key the server does not derive: every join is refused.
  auto join = protocol::encode_message(
      protocol::Join{"flooder", 1, std::string(protocol::kRunIdBytes, 'r'),
                     std::string(protocol::kNonceBytes, 'n')});
  ASSERT_TRUE(join.ok());
  int sent = 0;
  while (sent < kFloodJoins && protocol::send_encoded(flooder, *join, "not-a-key").ok()) {
    ++sent;
  }
  auto honest0 = start_client(dir, endpoint, 0, 2);
  auto honest1 = start_client(dir, endpoint, 1, 2);
  const auto code = server->wait_for(kRoundSeconds);
  ASSERT_TRUE(code.has_value()) << "the server is stuck after the flooder sent " << sent
                                << " joins and read no reject\n"
                                << log_of(dir);
  EXPECT_EQ(*code, 0) << log_of(dir);
  expect_honest_round(dir);
}

TEST(ServerFloodTest, AnOversizedMessageIsRefusedBeforeItIsHeld) {
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "1", "--min-clients", "2"});
  const std::string endpoint = await_endpoint(dir);
  ASSERT_FALSE(endpoint.empty()) << log_of(dir);
  const int64_t peak_before = proc_status_kib(server->pid(), "VmHWM");
  ASSERT_GT(peak_before, 0);

  zmq::context_t context;
  zmq::socket_t flooder(context, zmq::socket_type::dealer);
  flooder.set(zmq::sockopt::linger, 0);
  flooder.set(zmq::sockopt::rcvtimeo, 30000);
  flooder.connect(endpoint);
  // One message of 256 frames of 1 MiB, each under the server's frame limit
  // (a model of this width plus 1 MiB), none of it authenticated. The frames
  // share one buffer of this process (sent zero-copy, never freed by ZeroMQ).
  constexpr int kFrames = 256;
  static std::vector<char> blob(size_t{1} << 20, 'x');
  for (int i = 0; i < kFrames; ++i) {
    zmq::message_t frame(blob.data(), blob.size(), nullptr);
    ASSERT_TRUE(flooder.send(frame, zmq::send_flags::sndmore));
  }
  ASSERT_TRUE(flooder.send(zmq::buffer(std::string(32, 't')), zmq::send_flags::none));
  // The server has dealt with the message once it answers it (a reject).
  std::vector<zmq::message_t> reply;
  EXPECT_TRUE(zmq::recv_multipart(flooder, std::back_inserter(reply)))
      << "no answer to the oversized message\n"
      << log_of(dir);
  const int64_t peak_after = proc_status_kib(server->pid(), "VmHWM");
  EXPECT_LT(peak_after - peak_before, 64 * 1024)
      << "the server's peak resident set grew by " << (peak_after - peak_before) / 1024
      << " MiB for a " << kFrames << " MiB message\n"
      << log_of(dir);

  auto honest0 = start_client(dir, endpoint, 0, 2);
  auto honest1 = start_client(dir, endpoint, 1, 2);
  const auto code = server->wait_for(kRoundSeconds);
  ASSERT_TRUE(code.has_value()) << log_of(dir);
  EXPECT_EQ(*code, 0) << log_of(dir);
  expect_honest_round(dir);
}

}  // namespace
}  // namespace fedvar
