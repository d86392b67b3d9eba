// The federation end to end: `fedvar serve` and `fedvar client` as real
// processes on loopback TCP, a tiny ResNet18 (width 4) and a few hundred
// Fashion-MNIST images, so that each test takes seconds.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/file_io.h"
#include "core/model_io.h"
#include "protocol/auth.h"
#include "protocol/channel.h"
#include "tests/aggregator/wire_client.h"
#include "tests/support/test_util.h"

namespace fedvar {
namespace {

using fedvar::testing::run_command;
using fedvar::testing::TempDir;

using fedvar::testing::kData;
using fedvar::testing::kFedvar;
const std::string kKey = "federation-test-key";

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::string serve_command(const TempDir& dir, const std::string& extra) {
  return "FEDVAR_KEY=" + kKey + " " + kFedvar + " serve --data " + kData +
         " --endpoint 'tcp://127.0.0.1:*' --endpoint-file " + dir.file("endpoint") +
         " --clean-range -200: --test-range 0:200 --width 4 --batch-size 32"
         " --join-timeout 60 --trigger dba:pieces=4 --malicious attacker-0"
         " --metrics " +
         dir.file("metrics.jsonl") + " --checkpoint " + dir.file("global.safetensors") +
         " " + extra + " > " + dir.file("serve.json") + " 2> " + dir.file("serve.log");
}

// Shell lines that wait for the server's endpoint file into $E.
std::string await_endpoint(const TempDir& dir) {
  return "for i in $(seq 600); do [ -s " + dir.file("endpoint") +
         " ] && break; sleep 0.1; done; E=$(cat " + dir.file("endpoint") + "); ";
}

// A client holds only its own key, derived from the federation's.
std::string client_key(const std::string& id) {
  return protocol::derive_client_key(kKey, id).value();
}

std::string client_command(const TempDir& dir, int index, int clients,
                           const std::string& extra, std::string id = "") {
  const std::string name = "c" + std::to_string(index);
  if (id.empty()) id = "client-" + std::to_string(index);
  return "FEDVAR_CLIENT_KEY=" + client_key(id) + " " + kFedvar +
         " client --endpoint \"$E\" --data " + kData + " --pool 0:300 --clients " +
         std::to_string(clients) + " --index " + std::to_string(index) + " --id " + id +
         " " + extra + " > " + dir.file(name + ".json") + " 2> " +
         dir.file(name + ".log");
}

TEST(FederationTest, ThreeRoundsWithHookMetricsAndCheckpoint) {
  TempDir dir;
  const std::string script =
      serve_command(dir, "--rounds 3 --min-clients 3 --hook fine-tuning:epochs=1") +
      " & S=$!; " + await_endpoint(dir) +
      client_command(dir, 0, 3, "--poison dba:pieces=4,piece=0 --target 0 --ratio 0.3",
                     "attacker-0") +
      " & " + client_command(dir, 1, 3, "") + " & " + client_command(dir, 2, 3, "") +
      " & wait $S; echo server=$?; wait; echo done";
  const auto result = run_command("bash -c '" + script + "'");
  ASSERT_NE(result.output.find("server=0"), std::string::npos)
      << result.output << read_file(dir.file("serve.log")).value();

  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    EXPECT_EQ(l["round"], static_cast<int>(i + 1));
    EXPECT_TRUE(l["aggregated"].get<bool>());
    EXPECT_GE(l["acc"].get<double>(), 0.0);
    EXPECT_LE(l["acc"].get<double>(), 100.0);
    EXPECT_TRUE(l["asr"].is_number());
    EXPECT_EQ(l["asr_pieces"].size(), 4u);
    EXPECT_GE(l["clean_to_target"].get<double>(), 0.0);
    EXPECT_LE(l["clean_to_target"].get<double>(), 100.0);
    EXPECT_EQ(l["selected"].size(), 3u);
    EXPECT_EQ(l["malicious_selected"], 1);
    EXPECT_EQ(l["updates"]["received"], 3);
    EXPECT_EQ(l["updates"]["missing"], 0);
    ASSERT_EQ(l["hooks"].size(), 1u) << "the hook runs once per round";
    EXPECT_EQ(l["hooks"][0]["defense"], "fine-tuning");
    for (const char* phase : {"broadcast", "train_wait", "aggregate", "hook", "eval"}) {
      EXPECT_GE(l["seconds"][phase].get<double>(), 0.0) << phase;
    }
  }
  auto checkpoint = load_resnet(dir.file("global.safetensors"));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().message();
  EXPECT_EQ(checkpoint->metadata.at("round"), "3");
  EXPECT_EQ(checkpoint->model->options().width, 4);
  for (int i = 0; i < 3; ++i) {
    const auto out = nlohmann::json::parse(
        read_file(dir.file("c" + std::to_string(i) + ".json")).value());
    EXPECT_EQ(out["malicious"], i == 0);
  }
}

TEST(FederationTest, HooksRunOnlyInTheScheduledRounds) {
  TempDir dir;
  const std::string script =
      serve_command(dir,
                    "--rounds 2 --min-clients 1 --hook fine-tuning:epochs=1"
                    " --hook-rounds 2") +
      " & S=$!; " + await_endpoint(dir) + client_command(dir, 0, 1, "") +
      " & wait $S; echo server=$?; wait";
  const auto result = run_command("bash -c '" + script + "'");
  ASSERT_NE(result.output.find("server=0"), std::string::npos)
      << read_file(dir.file("serve.log")).value();
  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["hooks"].size(), 0u);
  EXPECT_EQ(lines[1]["hooks"].size(), 1u);
  auto bad = run_command("FEDVAR_KEY=k " + kFedvar + " serve --data " + kData +
                         " --hook fine-tuning --hook-rounds 3-1 2>&1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--hook-rounds"), std::string::npos) << bad.output;
}

// This test's process is the third client: it joins, receives the round
// task, answers with a broken update (rejected with a reason), then dies.
TEST(FederationTest, ClientDyingMidRoundDoesNotStopTheRound) {
  TempDir dir;
  const std::string script =
      "(" +
      serve_command(dir, "--rounds 2 --min-clients 3 --quorum 2 --round-timeout 20") +
      " & S=$!; " + await_endpoint(dir) + client_command(dir, 0, 2, "") + " & " +
      client_command(dir, 1, 2, "") + " & wait $S; echo $? > " + dir.file("server.code") +
      "; wait) > /dev/null 2>&1 &";
  ASSERT_EQ(std::system(("bash -c '" + script + "'").c_str()), 0);
  std::string endpoint;
  for (int i = 0; i < 600 && endpoint.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto text = read_file(dir.file("endpoint"));
    if (text.ok()) endpoint = text.value().substr(0, text.value().find('\n'));
  }
  ASSERT_FALSE(endpoint.empty());
  {
    zmq::context_t context;
    zmq::socket_t socket = testing::connect_dealer(context, endpoint);
    // A participant cannot pose as another: a join for client-0 under this
    // client's key is refused (unsigned: no key of a client it names signs it).
    const std::string key = client_key("doomed");
    ASSERT_TRUE(protocol::send_message(socket, protocol::Hello{}, key).ok());
    auto challenge = testing::expect_next<protocol::Challenge>(socket, key);
    ASSERT_TRUE(challenge.ok()) << challenge.status().message();
    const protocol::Join impostor{"client-0", 50, challenge->run_id, challenge->nonce};
    ASSERT_TRUE(protocol::send_message(socket, impostor, key).ok());
    auto refused = testing::expect_next<protocol::Reject>(socket, key);
    ASSERT_TRUE(refused.ok()) << refused.status().message();
    EXPECT_NE(refused->reason.find("authentication failed"), std::string::npos)
        << refused->reason;
    ASSERT_TRUE(testing::join_server(socket, "doomed", 50, key).ok());
    auto task = protocol::receive_message(socket, key, false);
    ASSERT_TRUE(task.ok() && task->message.ok());
    auto* round_task = std::get_if<protocol::RoundTask>(&task->message.value());
    ASSERT_NE(round_task, nullptr);
    protocol::Update broken{round_task->round, "doomed", 50, round_task->tensors,
                            round_task->run_id};
    broken.tensors.erase("fc.bias");
    ASSERT_TRUE(protocol::send_message(socket, broken, key).ok());
    auto reply = protocol::receive_message(socket, key, false);
    ASSERT_TRUE(reply.ok() && reply->message.ok());
    auto* reject = std::get_if<protocol::Reject>(&reply->message.value());
    ASSERT_NE(reject, nullptr);
    EXPECT_NE(reject->reason.find("fc.bias"), std::string::npos) << reject->reason;
  }  // the socket closes: this client is gone in the middle of round 1

  std::string code;
  for (int i = 0; i < 1200 && code.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto text = read_file(dir.file("server.code"));
    if (text.ok()) code = text.value();
  }
  ASSERT_EQ(code, "0\n") << read_file(dir.file("serve.log")).value();
  const auto lines = read_jsonl(dir.file("metrics.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["selected"].size(), 3u);
  EXPECT_EQ(lines[0]["updates"]["received"], 2);
  EXPECT_EQ(lines[0]["updates"]["rejected"], 1);
  EXPECT_EQ(lines[0]["updates"]["missing"], 1);
  EXPECT_TRUE(lines[0]["aggregated"].get<bool>());
  EXPECT_EQ(lines[1]["selected"].size(), 2u) << "the dead client is no longer sampled";
  EXPECT_EQ(lines[1]["updates"]["received"], 2);
}

TEST(FederationTest, BadInputGetsAClearErrorAndExitCode2) {
  TempDir dir;
  auto r =
      run_command("env -u FEDVAR_KEY " + kFedvar + " serve --data " + kData + " 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("HMAC key"), std::string::npos) << r.output;
  r = run_command("FEDVAR_KEY=k " + kFedvar + " serve --data " + kData +
                  " --hook nope 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("nope"), std::string::npos) << r.output;
  r = run_command("FEDVAR_CLIENT_KEY=k " + kFedvar +
                  " client --endpoint tcp://127.0.0.1:1 --data " + kData +
                  " --pool 0:100 --partition zipf 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--partition"), std::string::npos) << r.output;
  r = run_command("FEDVAR_CLIENT_KEY=k " + kFedvar +
                  " client --endpoint tcp://127.0.0.1:1 --data " + kData +
                  " --pool 0:100 --poison patch:size=5 --attack-rounds 0 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("--attack-rounds"), std::string::npos) << r.output;
  // A client reads its own key, not the federation's.
  r = run_command("env -u FEDVAR_CLIENT_KEY FEDVAR_KEY=k " + kFedvar +
                  " client --endpoint tcp://127.0.0.1:1 --data " + kData +
                  " --pool 0:100 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("FEDVAR_CLIENT_KEY"), std::string::npos) << r.output;
}

// fedvar client-key derives what the server derives (protocol/auth.h), into
// a key file only its owner reads; without the federation key, or with a
// key file without end, it says so.
TEST(FederationTest, ClientKeyCommandDerivesTheServersKey) {
  TempDir dir;
  auto r = run_command("FEDVAR_KEY=" + kKey + " " + kFedvar + " client-key --id c7");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["key"], client_key("c7"));
  r = run_command("FEDVAR_KEY=" + kKey + " " + kFedvar + " client-key --id c7 --out " +
                  dir.file("c7.key"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_file(dir.file("c7.key")).value(), client_key("c7") + "\n");
  struct stat st {};
  ASSERT_EQ(stat(dir.file("c7.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  r = run_command("env -u FEDVAR_KEY " + kFedvar + " client-key --id c7 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("FEDVAR_KEY"), std::string::npos) << r.output;
  // A key file without end is refused, not read into memory.
  r = run_command(kFedvar + " client-key --id c7 --key-file /dev/zero 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("more than the limit"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace fedvar
