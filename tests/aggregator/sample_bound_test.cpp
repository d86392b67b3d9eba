// The server owns the weights (issue #20): a client with a valid key cannot
// take over the global model by the sample count it declares, whether it
// declares 10^15 (its update would be the model) or INT64_MAX (FedAvg's sum
// of weights would overflow). A real server and two honest clients run two
// rounds; the two greedy clients join from this process once round 1 is open.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zmq.hpp>

#include <cstdint>
#include <limits>
#include <vector>

#include "core/safetensors.h"
#include "protocol/channel.h"
#include "tests/aggregator/serve_fixture.h"
#include "tests/aggregator/wire_client.h"

namespace fedvar {
namespace {

using testing::await_endpoint;
using testing::await_text;
using testing::client_key_of;
using testing::connect_dealer;
using testing::join_server;
using testing::read_jsonl;
using testing::start_client;
using testing::start_server;
using testing::TempDir;

struct Greedy {
  std::string id;
  int64_t samples;
};

std::string log_of(const TempDir& dir) {
  auto text = read_file(dir.file("serve.log"));
  return text.ok() ? text.value() : "(no server log)";
}

// Answers whatever the server sends `greedy`: a round task with an update of
// every float set to 100 under the declared count; a reject's reason is
// returned.
std::string play(zmq::socket_t& socket, const Greedy& greedy) {
  const std::string key = client_key_of(greedy.id);
  auto reply = protocol::receive_message(socket, key, /*with_identity=*/false);
  if (!reply.ok() || !reply->message.ok()) return "(no answer to the join)";
  if (const auto* reject = std::get_if<protocol::Reject>(&reply->message.value())) {
    return reject->reason;
  }
  const auto* task = std::get_if<protocol::RoundTask>(&reply->message.value());
  if (task == nullptr) return "(an unexpected answer)";
  protocol::Update update{task->round, greedy.id, greedy.samples, task->tensors,
                          task->run_id};
  for (auto& [name, t] : update.tensors) {
    if (t.is_floating_point()) t = torch::full_like(t, 100.0);
  }
  (void)protocol::send_message(socket, update, key);
  return "";
}

TEST(SampleBoundTest, DeclaredSampleCountsCannotTakeOverTheModel) {
  TempDir dir;
  auto server = start_server(dir, {"--rounds", "2", "--min-clients", "2"});
  const std::string endpoint = await_endpoint(dir);
  ASSERT_FALSE(endpoint.empty()) << log_of(dir);
  auto honest0 = start_client(dir, endpoint, 0, 2);
  auto honest1 = start_client(dir, endpoint, 1, 2);
  ASSERT_TRUE(await_text(dir.file("serve.log"), "round 1: sending", 60)) << log_of(dir);

  const std::vector<Greedy> greedy = {{"greedy", 1'000'000'000'000'000},
                                      {"overflow", std::numeric_limits<int64_t>::max()}};
  zmq::context_t context;
  std::vector<zmq::socket_t> sockets;
  for (const Greedy& g : greedy) {
    sockets.push_back(connect_dealer(context, endpoint));
    ASSERT_TRUE(join_server(sockets.back(), g.id, g.samples, client_key_of(g.id)).ok());
  }
  std::vector<std::string> refusals;
  for (size_t i = 0; i < greedy.size(); ++i)
    refusals.push_back(play(sockets[i], greedy[i]));

  const auto code = server->wait_for(60);
  ASSERT_TRUE(code.has_value()) << log_of(dir);
  ASSERT_EQ(*code, 0) << log_of(dir);
  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  std::string rejections;
  for (const auto& line : lines) rejections += line["rejections"].dump() + "\n";
  for (size_t i = 0; i < greedy.size(); ++i) {
    SCOPED_TRACE(greedy[i].id);
    EXPECT_NE(refusals[i].find("--max-samples"), std::string::npos) << refusals[i];
    EXPECT_NE(rejections.find(greedy[i].id + ": "), std::string::npos) << rejections;
  }
  EXPECT_NE(rejections.find("--max-samples"), std::string::npos) << rejections;

  // The model is the honest clients' average: finite, small, variances >= 0.
  auto checkpoint = read_safetensors(dir.file("global.safetensors"));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  for (const auto& [name, t] : checkpoint->tensors) {
    if (!t.is_floating_point()) continue;
    SCOPED_TRACE(name);
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>());
    EXPECT_LT(t.abs().max().item<double>(), 50.0);
    if (name.find("running_var") != std::string::npos) {
      EXPECT_GE(t.min().item<double>(), 0.0);
    }
  }
}

}  // namespace
}  // namespace fedvar
