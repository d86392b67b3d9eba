// The simulated client's side of the protocol: it asks for a challenge,
// joins by signing the server's run id and nonce, answers only tasks and
// shutdowns of that run, ignores a challenge it did not ask for, and joins
// again (hello first) when rejected. The server is a ROUTER in this test.
#include "client_sim/client.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <thread>
#include <zmq.hpp>

#include "protocol/auth.h"
#include "protocol/channel.h"

namespace fedvar::client_sim {
namespace {

const std::string kFederationKey = "session-test-federation-key";

struct FakeServer {
  FakeServer() {
    router.set(zmq::sockopt::linger, 0);
    router.set(zmq::sockopt::rcvtimeo, 20000);
    router.bind("tcp://127.0.0.1:*");
  }
  std::string endpoint() const { return router.get(zmq::sockopt::last_endpoint); }

  // The client's next message, verified under its key.
  protocol::Received next() {
    const protocol::KeyForClient key_for = [](std::string_view id) {
      return protocol::derive_client_key(kFederationKey, id);
    };
    auto received = protocol::receive_message(router, key_for, /*with_identity=*/true);
    EXPECT_TRUE(received.ok()) << "the client sent nothing";
    if (!received.ok()) return {};
    identity = received->identity;
    return std::move(received).value();
  }

  void send(const protocol::Message& message) {
    const std::string key = protocol::derive_client_key(kFederationKey, "c1").value();
    ASSERT_TRUE(protocol::send_message(router, message, key, &identity).ok());
  }

  zmq::context_t context;
  zmq::socket_t router{context, zmq::socket_type::router};
  std::string identity;
};

template <typename T>
const T* as(const protocol::Received& received) {
  if (!received.message.ok()) return nullptr;
  return std::get_if<T>(&received.message.value());
}

TEST(SessionTest, JoinsByTheChallengeAndHeedsOnlyItsRun) {
  FakeServer server;
  ClientOptions options;
  options.endpoint = server.endpoint();
  options.client_id = "c1";
  options.key = protocol::derive_client_key(kFederationKey, "c1").value();
  options.idle_timeout_s = 30;
  Dataset shard{torch::zeros({4, 1, 28, 28}, torch::kUInt8),
                torch::zeros({4}, torch::kLong)};
  Status status = Status::Internal("the client did not return");
  std::thread client([&] { status = run_client(options, shard); });

  const protocol::Received hello = server.next();
  EXPECT_NE(as<protocol::Hello>(hello), nullptr);
  EXPECT_FALSE(hello.authenticated);
  const std::string run(protocol::kRunIdBytes, 'r');
  const std::string other_run(protocol::kRunIdBytes, 'o');
  const std::string nonce(protocol::kNonceBytes, 'n');
  server.send(protocol::Challenge{run, nonce});
  const protocol::Received join = server.next();
  const auto* joined = as<protocol::Join>(join);
  ASSERT_NE(joined, nullptr) << join.message.status().message();
  EXPECT_TRUE(join.authenticated);
  EXPECT_EQ(joined->client_id, "c1");
  EXPECT_EQ(joined->num_samples, 4);
  EXPECT_EQ(joined->run_id, run);
  EXPECT_EQ(joined->nonce, nonce);

  // Not answered: a challenge it did not ask for, a task and a shutdown of
  // another run (training on this empty model would fail the client).
  server.send(protocol::Challenge{run, std::string(protocol::kNonceBytes, 'x')});
  server.send(protocol::RoundTask{1, {}, {}, other_run});
  server.send(protocol::Shutdown{other_run});
  // A reject: it joins again, from a hello.
  server.send(protocol::Reject{"try again"});
  EXPECT_NE(as<protocol::Hello>(server.next()), nullptr);
  server.send(protocol::Shutdown{run});
  client.join();
  EXPECT_TRUE(status.ok()) << status.message();
}

}  // namespace
}  // namespace fedvar::client_sim
