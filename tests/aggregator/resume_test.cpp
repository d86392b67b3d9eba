// `fedvar serve --resume` in a real federation: the server is killed with
// SIGKILL at random points (at start, then a random delay after each restart
// recorded a round of its own) and started again with --resume,
// while the clients stay up and join it again when their connection comes
// back. The finished run must equal an uninterrupted one with the same seed:
// each round recorded once, the same ACC every round, the same final model
// to the bit. The rule is the coordinate median and the after-rule
// fine-tuning: neither depends on the order in which updates arrive (FedAvg's
// float32 sum does, by rounding, so that two runs of it agree only to
// rounding, interrupted or not).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <random>

#include "core/safetensors.h"
#include "tests/aggregator/serve_fixture.h"

namespace fedvar::testing {
namespace {

constexpr int kRounds = 6;
constexpr int kClients = 2;

// A loopback TCP port that was free a moment ago: the server must come back
// on the same endpoint for the clients to reconnect to it.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), size);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  close(fd);
  return ntohs(address.sin_port);
}

// Start `start` of the server logs to DIR/serve-START.log.
std::unique_ptr<Process> serve(const TempDir& dir, const std::string& endpoint,
                               int start) {
  std::vector<std::string> argv = {kFedvar,           "serve",
                                   "--data",          kData,
                                   "--endpoint",      endpoint,
                                   "--clean-range",   "-200:",
                                   "--test-range",    "0:64",
                                   "--width",         "4",
                                   "--batch-size",    "32",
                                   "--threads",       "1",
                                   "--rounds",        std::to_string(kRounds),
                                   "--min-clients",   std::to_string(kClients),
                                   "--join-timeout",  "60",
                                   "--round-timeout", "60",
                                   "--aggregate",     "median",
                                   "--after",         "fine-tuning:epochs=1",
                                   "--after-rounds",  "2-",
                                   "--seed",          "11",
                                   "--metrics",       dir.file("metrics.jsonl"),
                                   "--checkpoint",    dir.file("global.safetensors")};
  argv.push_back("--resume");  // the first start has nothing to resume: it starts the run
  return std::make_unique<Process>(
      argv, std::vector<std::string>{"FEDVAR_KEY=" + kServeKey}, dir.file("serve.json"),
      dir.file("serve-" + std::to_string(start) + ".log"));
}

std::vector<std::unique_ptr<Process>> start_clients(const TempDir& dir,
                                                    const std::string& endpoint) {
  std::vector<std::unique_ptr<Process>> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(start_client(dir, endpoint, i, kClients));
  return clients;
}

std::string log_of(const TempDir& dir, int start) {
  auto text = read_file(dir.file("serve-" + std::to_string(start) + ".log"));
  return text.ok() ? *text : "";
}

size_t recorded_rounds(const TempDir& dir) {
  auto text = read_file(dir.file("metrics.jsonl"));
  return text.ok() ? std::count(text->begin(), text->end(), '\n') : 0;
}

TEST(ServeResume, AKilledServerResumesToTheRunItWouldHaveMade) {
  const std::string endpoint_a = "tcp://127.0.0.1:" + std::to_string(free_port());
  TempDir a;
  auto server_a = serve(a, endpoint_a, 0);
  auto clients_a = start_clients(a, endpoint_a);
  ASSERT_EQ(server_a->wait_for(240), 0) << log_of(a, 0);

  const std::string endpoint_b = "tcp://127.0.0.1:" + std::to_string(free_port());
  TempDir b;
  int start = 0;
  auto server_b = serve(b, endpoint_b, start);
  auto clients_b = start_clients(b, endpoint_b);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(0, 1500);
  size_t rounds_at_start = 0, rounds_at_last_kill = 0;
  for (int k = 0; k < 3; ++k) {
    // Kill k comes a random 0-1.5 s after the server (from kill 1 on) has
    // recorded a round of its own.
    for (int i = 0; i < 2400 && k > 0 && recorded_rounds(b) <= rounds_at_start &&
                    !server_b->wait_for(0);
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const int delay = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    if (server_b->wait_for(0)) break;  // it finished first
    rounds_at_last_kill = recorded_rounds(b);
    kill(server_b->pid(), SIGKILL);
    ASSERT_EQ(server_b->wait_for(10), 128 + SIGKILL);
    std::cerr << "kill " << k << " at " << rounds_at_last_kill << " recorded round(s), "
              << delay << " ms after the wait\n";
    rounds_at_start = rounds_at_last_kill;
    server_b = serve(b, endpoint_b, ++start);
  }
  ASSERT_EQ(server_b->wait_for(240), 0) << log_of(b, start);
  // The last start went on after the last committed round, not from round 1:
  // with n lines recorded at the kill, the checkpoint was of round n or n - 1
  // (of the last round: the run was complete).
  if (rounds_at_last_kill >= 2) {
    const std::string log = log_of(b, start);
    const bool resumed =
        log.find("the run is complete") != std::string::npos ||
        log.find("resuming after round " + std::to_string(rounds_at_last_kill)) !=
            std::string::npos ||
        log.find("resuming after round " + std::to_string(rounds_at_last_kill - 1)) !=
            std::string::npos;
    EXPECT_TRUE(resumed) << log;
  }

  const auto lines_a = read_jsonl(a.file("metrics.jsonl"));
  const auto lines_b = read_jsonl(b.file("metrics.jsonl"));
  ASSERT_EQ(lines_a.size(), static_cast<size_t>(kRounds));
  ASSERT_EQ(lines_b.size(), static_cast<size_t>(kRounds));
  for (int r = 0; r < kRounds; ++r) {
    EXPECT_EQ(lines_b[r]["round"], r + 1);
    EXPECT_EQ(lines_b[r]["acc"], lines_a[r]["acc"]) << "round " << r + 1;
    EXPECT_EQ(lines_b[r]["hooks"].size(), lines_a[r]["hooks"].size())
        << "round " << r + 1;
  }
  auto model_a = read_safetensors(a.file("global.safetensors"));
  auto model_b = read_safetensors(b.file("global.safetensors"));
  ASSERT_TRUE(model_a.ok() && model_b.ok());
  EXPECT_EQ(model_b->metadata.at("round"), std::to_string(kRounds));
  ASSERT_EQ(model_a->tensors.size(), model_b->tensors.size());
  for (const auto& [name, tensor] : model_a->tensors) {
    EXPECT_TRUE(torch::equal(tensor, model_b->tensors.at(name))) << name;
  }
  for (auto* dir : {&a, &b}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir->path())) {
      EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
    }
  }
}

}  // namespace
}  // namespace fedvar::testing
