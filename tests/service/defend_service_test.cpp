// fedvar defend and fedvar defend-request as real processes on loopback TCP:
// a width-8 ResNet18, 200 clean Fashion-MNIST images, a two-step VarDefense.
// Good requests are purified, and a reply to a client that left is dropped
// and counted; a wrong key, a malformed or oversized message is refused and
// the service keeps serving; a full queue answers "busy" at once; SIGTERM
// stops the service with exit code 0.
#include <nlohmann/json.hpp>

#include <sstream>

#include "tests/service/service_fixture.h"

namespace fedvar {
namespace {

using testing::kFedvar;
using testing::kServiceKey;
using testing::RawClient;
using testing::run_command;
using testing::ServiceProcess;
using testing::TempDir;
using testing::verified_reply;

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  return lines;
}

std::string defend_request(const ServiceProcess& service, const std::string& key_file,
                           const std::string& model, const std::string& out,
                           const std::string& extra = "") {
  return kFedvar + " defend-request --connect " + service.endpoint() + " --key-file " +
         key_file + " --model " + model + " --out " + out + " --timeout 120 " + extra;
}

// Whether any tensor of the two files differs.
bool models_differ(const std::string& a, const std::string& b) {
  auto x = read_safetensors(a);
  auto y = read_safetensors(b);
  EXPECT_TRUE(x.ok() && y.ok());
  if (!x.ok() || !y.ok()) return false;
  for (const auto& [name, t] : x->tensors) {
    if (!torch::equal(t, y->tensors.at(name).to(t.dtype()))) return true;
  }
  return false;
}

TEST(DefendServiceTest, PurifiesRequestsAndStopsOnSigterm) {
  TempDir dir;
  const std::string model = testing::make_tiny_model(dir);
  ServiceProcess service(dir, "");
  ASSERT_FALSE(service.endpoint().empty()) << service.log();

  // A client that leaves while its request runs: the reply is dropped, counted.
  {
    RawClient gone(service.endpoint());
    gone.send(
        testing::signed_request(testing::request_header(protocol::new_request_id().value(),
                                                        "fine-tuning:epochs=8"),
                                read_file(model).value()));
    for (int i = 0; i < 300 && service.log().find("purifying") == std::string::npos;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  const auto r = run_command(
      defend_request(service, dir.file("key"), model, dir.file("out.safetensors")) +
      " 2>" + dir.file("request.log"));
  ASSERT_EQ(r.exit_code, 0) << r.output << read_file(dir.file("request.log")).value()
                            << service.log();
  const auto report = nlohmann::json::parse(r.output);
  EXPECT_EQ(report["defense"], "vardefense");
  EXPECT_TRUE(report.contains("acc_before"));
  EXPECT_TRUE(report.contains("acc_after"));
  EXPECT_EQ(report["normalization"]["source"], "model");  // the file's metadata
  EXPECT_EQ(report["clean_images"], 200);
  auto purified = load_resnet(dir.file("out.safetensors"));
  ASSERT_TRUE(purified.ok()) << purified.status().message();
  EXPECT_EQ(purified->metadata.at("purified_by"), "vardefense");
  EXPECT_TRUE(models_differ(model, dir.file("out.safetensors")));

  EXPECT_EQ(service.terminate(), 0) << service.log();
  const auto lines = json_lines(service.out());
  ASSERT_EQ(lines.size(), 2u) << service.out();
  EXPECT_EQ(lines[0]["kind"], "purified");
  EXPECT_EQ(lines[0]["defense"], "fine-tuning");
  EXPECT_FALSE(lines[0]["delivered"].get<bool>());
  EXPECT_EQ(lines[1]["kind"], "purified");
  EXPECT_EQ(lines[1]["request_id"], report["request_id"]);
  EXPECT_EQ(lines[1]["acc_after"], report["acc_after"]);
  EXPECT_TRUE(lines[1]["delivered"].get<bool>());
  EXPECT_NE(service.log().find("1 reply(ies) dropped"), std::string::npos)
      << service.log();
}

TEST(DefendServiceTest, RefusesBadRequestsAndKeepsServing) {
  TempDir dir;
  const std::string model = testing::make_tiny_model(dir);
  const std::string bytes = read_file(model).value();
  ASSERT_LT(bytes.size(), size_t{1} << 20);  // fits the 1 MiB limit below
  ServiceProcess service(dir, "--max-request-mb 1");
  ASSERT_FALSE(service.endpoint().empty()) << service.log();

  // A wrong key: refused, and the client says its key does not verify.
  ASSERT_TRUE(write_file_atomic(dir.file("wrong"), "another-key\n").ok());
  auto r = run_command(
      defend_request(service, dir.file("wrong"), model, dir.file("wrong.safetensors")) +
      " 2>&1 >/dev/null");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("wrong key"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("authentication failed"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir.file("wrong.safetensors")));

  RawClient raw(service.endpoint());
  const std::string id = protocol::new_request_id().value();
  struct Case {
    std::vector<std::string> frames;
    std::string error;  // in the verified error reply
    bool attributed;    // whether the reply carries the request id
  };
  auto header_v9 = testing::request_header(id);
  header_v9[header_v9.find("version") + 7] = 9;  // positive fixint 1 -> 9
  const std::vector<Case> cases = {
      {testing::signed_request("\x93\x01\x02\x03", bytes), "not a map", false},
      {testing::signed_request(header_v9, bytes), "version is 9", false},
      {testing::signed_request(testing::request_header(id), "not safetensors"),
       "not a safetensors file", true},
      {testing::signed_request(testing::request_header(id, "magic"), bytes), "magic",
       true},
      {{std::string(600000, 'h'), std::string(600000, 'm'), std::string(32, 't')},
       "exceeds",
       false},
      {std::vector<std::string>(7, "x"), "at most 3 frames", false},
      {{"only one frame"}, "3 frames", false},
  };
  for (const Case& c : cases) {
    raw.send(c.frames);
    const auto reply = raw.receive(60000);
    const auto header = verified_reply(reply);
    EXPECT_EQ(header.kind, protocol::ReplyKind::kError) << c.error;
    EXPECT_NE(header.error.find(c.error), std::string::npos) << header.error;
    EXPECT_EQ(header.request_id, c.attributed ? id : "") << c.error;
  }
  // One frame over ZMQ_MAXMSGSIZE: ZeroMQ drops that connection, no reply.
  RawClient huge(service.endpoint());
  huge.send(testing::signed_request(testing::request_header(id),
                                    std::string(size_t{3} << 20, 'x')));
  EXPECT_TRUE(huge.receive(1500).empty());

  // Still serving, with the request's normalization this time.
  r = run_command(defend_request(service, dir.file("key"), model,
                                 dir.file("out.safetensors"), "--normalize 0.5,0.5") +
                  " 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output << service.log();
  EXPECT_EQ(nlohmann::json::parse(r.output)["normalization"]["source"], "request");

  EXPECT_EQ(service.terminate(), 0) << service.log();
  const auto lines = json_lines(service.out());
  EXPECT_EQ(lines.size(), 1 + cases.size() + 1) << service.out();  // no line for `huge`
  EXPECT_EQ(lines.front()["error"], "authentication failed");
  EXPECT_TRUE(lines.front()["request_id"].is_null());
  EXPECT_EQ(lines.back()["kind"], "purified");
}

TEST(DefendServiceTest, AFullQueueAnswersBusyAtOnce) {
  TempDir dir;
  const std::string bytes = read_file(testing::make_tiny_model(dir)).value();
  ServiceProcess service(dir, "--queue 1");
  ASSERT_FALSE(service.endpoint().empty()) << service.log();

  // Four requests at once: one runs, one waits, the others find the queue full.
  constexpr int kClients = 4;
  std::vector<std::unique_ptr<RawClient>> clients;
  std::vector<std::string> ids;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(service.endpoint()));
    ids.push_back(protocol::new_request_id().value());
    clients.back()->send(
        testing::signed_request(testing::request_header(ids.back()), bytes));
  }
  // Each reply and when it came, all four sockets polled in turn.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::vector<std::string>> replies(kClients);
  std::vector<double> arrived(kClients, 0);
  for (int done = 0, round = 0; done < kClients && round < 3000; ++round) {
    for (int i = 0; i < kClients; ++i) {
      if (!replies[i].empty()) continue;
      replies[i] = clients[i]->receive(10);
      arrived[i] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      done += replies[i].empty() ? 0 : 1;
    }
  }
  int purified = 0, busy = 0;
  double first_purified_s = 1e9, last_busy_s = 0;
  for (int i = 0; i < kClients; ++i) {
    const auto header = verified_reply(replies[i]);
    EXPECT_EQ(header.request_id, ids[i]);
    if (header.kind == protocol::ReplyKind::kBusy) {
      ++busy;
      last_busy_s = std::max(last_busy_s, arrived[i]);
      EXPECT_NE(header.error.find("queue is full"), std::string::npos);
    } else {
      EXPECT_EQ(header.kind, protocol::ReplyKind::kPurified) << header.error;
      ++purified;
      first_purified_s = std::min(first_purified_s, arrived[i]);
    }
  }
  EXPECT_GE(busy, 1);
  EXPECT_GE(purified, 1);
  EXPECT_EQ(busy + purified, kClients);
  EXPECT_LT(last_busy_s, first_purified_s)
      << "busy is answered before a purification ends";
  EXPECT_EQ(service.terminate(), 0) << service.log();
}

}  // namespace
}  // namespace fedvar
