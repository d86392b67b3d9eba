// What the defend service's tests share: `fedvar defend` as a real child
// process on a loopback port the OS picks, a tiny model file, and raw
// ZeroMQ requests for what the fedvar client would never send.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/file_io.h"
#include "core/model_io.h"
#include "protocol/auth.h"
#include "protocol/defend_wire.h"
#include "tests/support/test_util.h"

namespace fedvar::testing {

inline const std::string kServiceKey = "defend-service-test-key";
// Fast enough for tests: two purification steps and one epoch.
inline const std::string kTestDefense = "vardefense:share_steps=2,final_epochs=1";

// `fedvar defend` in the background; killed if the test did not stop it.
class ServiceProcess {
 public:
  ServiceProcess(const TempDir& dir, const std::string& extra_args)
      : endpoint_file_(dir.file("endpoint")),
        out_(dir.file("defend.jsonl")),
        log_(dir.file("defend.log")) {
    EXPECT_TRUE(write_file_atomic(dir.file("key"), kServiceKey + "\n").ok());
    const std::string command =
        "exec " + kFedvar + " defend --listen 'tcp://127.0.0.1:*' --endpoint-file " +
        endpoint_file_ + " --data " + kData +
        " --clean-range -200: --device cpu --threads 2 --defense " + kTestDefense +
        " --key-file " + dir.file("key") + " " + extra_args + " > " + out_ + " 2> " +
        log_;
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 600 && !std::filesystem::exists(endpoint_file_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto text = read_file(endpoint_file_);
    if (text.ok()) endpoint_ = text->substr(0, text->find('\n'));
  }
  ~ServiceProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  std::string log() const { return read_file(log_).ok() ? read_file(log_).value() : ""; }
  std::string out() const { return read_file(out_).ok() ? read_file(out_).value() : ""; }

  // SIGTERM, then the exit code (-1 if it did not exit by itself in 60 s).
  int terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 600; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return -1;
  }

 private:
  std::string endpoint_file_, out_, log_, endpoint_;
  pid_t pid_ = -1;
};

// A width-8 ResNet18 for Fashion-MNIST, saved with normalization metadata.
inline std::string make_tiny_model(const TempDir& dir) {
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 8});
  const std::string path = dir.file("in.safetensors");
  EXPECT_TRUE(save_resnet(path, model, Normalization{{0.286}, {0.353}}).ok());
  return path;
}

// A signed request's frames: [header][model][tag] (tag under `key`).
inline std::vector<std::string> signed_request(const std::string& header,
                                               const std::string& model,
                                               const std::string& key = kServiceKey) {
  return {header, model, protocol::sign_parts({header, model}, key).value()};
}

inline std::string request_header(const std::string& id,
                                  std::optional<std::string> defense = std::nullopt) {
  return protocol::encode_request_header({id, std::move(defense), std::nullopt});
}

// A DEALER connected to the service that sends raw frames.
class RawClient {
 public:
  explicit RawClient(const std::string& endpoint)
      : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void send(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      socket_.send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                               ? zmq::send_flags::sndmore
                                               : zmq::send_flags::none);
    }
  }
  // The next reply's frames, or nothing within `timeout_ms`.
  std::vector<std::string> receive(int timeout_ms) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(timeout_ms));
    std::vector<std::string> out;
    if (!(items[0].revents & ZMQ_POLLIN)) return out;
    std::vector<zmq::message_t> frames;
    (void)zmq::recv_multipart(socket_, std::back_inserter(frames));
    for (const auto& f : frames) out.push_back(f.to_string());
    return out;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

// The header of a reply whose tag verifies under the service's key.
inline protocol::ReplyHeader verified_reply(const std::vector<std::string>& frames) {
  EXPECT_GE(frames.size(), 2u);
  if (frames.size() < 2) return {};
  std::vector<std::string_view> parts(frames.begin(), frames.end() - 1);
  EXPECT_TRUE(protocol::verify_parts(parts, frames.back(), kServiceKey).ok());
  auto header = protocol::decode_reply_header(frames[0]);
  EXPECT_TRUE(header.ok()) << header.status().message();
  return header.ok() ? header.value() : protocol::ReplyHeader{};
}

}  // namespace fedvar::testing
