// A hook that fails mid-run (a libtorch error, as a CUDA out-of-memory would
// be) must not leave the federation hanging: the server returns the error
// with libtorch's message and tells every client to stop, so that the real
// `fedvar client` processes exit within seconds instead of waiting for their
// idle timeout (15 minutes by default).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <future>

#include "aggregator/round_pipeline.h"
#include "aggregator/server.h"
#include "protocol/auth.h"
#include "tests/support/test_util.h"

namespace fedvar::aggregator {
namespace {

const std::string kKey = "failing-hook-test-key";

// Throws libtorch's own error type from inside the defense.
class ThrowingHook : public plugins::Defense {
 public:
  std::string name() const override { return "throwing"; }

 protected:
  double holdout() const override { return 0.1; }
  nlohmann::json options() const override { return nlohmann::json::object(); }
  Result<nlohmann::json> purify(ResNet18&, const plugins::CleanSplit&, double,
                                const plugins::DefenseContext&) override {
    TORCH_CHECK(false, "injected hook failure");
    return nlohmann::json::object();
  }
};

// Starts `clients` real client processes against `endpoint`; the future is
// ready when all of them have exited.
std::future<testing::CommandResult> start_clients(const std::string& endpoint,
                                                  int clients) {
  std::string script;
  for (int i = 0; i < clients; ++i) {
    const std::string id = "client-" + std::to_string(i);
    script += "FEDVAR_CLIENT_KEY=" + protocol::derive_client_key(kKey, id).value() + " " +
              testing::kFedvar + " client --endpoint " + endpoint + " --data " +
              testing::kData + " --pool 0:100 --clients " + std::to_string(clients) +
              " --index " + std::to_string(i) + " --id " + id +
              " --threads 1 > /dev/null 2>&1 & ";
  }
  script += "wait; echo clients-exited";
  return std::async(std::launch::async,
                    [script] { return testing::run_command("bash -c '" + script + "'"); });
}

// Runs a 3-round federation of two clients whose callbacks come from
// `make_callbacks`; returns the server's status and how many seconds the
// client processes took to exit after the server returned.
std::pair<Status, double> run_failing_federation(
    const std::function<RoundCallbacks(RoundPipeline&)>& make_callbacks) {
  auto test = load_dataset(testing::kData, "test");
  EXPECT_TRUE(test.ok());
  ServerOptions options;
  options.endpoint = "tcp://127.0.0.1:*";
  options.rounds = 3;
  options.min_clients = 2;
  options.join_timeout_s = 60;
  options.round_timeout_s = 60;
  options.key = kKey;
  options.training.batch_size = 32;
  torch::manual_seed(0);
  Server server(options, ResNet18(ResNetOptions{1, 10, Stem::kCifar, 4}));
  EXPECT_TRUE(server.bind().ok());
  plugins::DefenseContext context;
  context.clean = test->slice(0, 100);
  context.normalization = Normalization::none(1);
  std::vector<std::unique_ptr<plugins::Defense>> hooks;
  hooks.push_back(std::make_unique<ThrowingHook>());
  EvalSpec eval{test->slice(0, 100), std::nullopt, 0, {}};
  eval.options.normalization = context.normalization;
  RoundPipeline pipeline({}, std::move(hooks), context, eval);
  auto clients = start_clients(server.endpoint(), 2);
  const Status status = server.run(make_callbacks(pipeline));
  const auto returned = std::chrono::steady_clock::now();
  EXPECT_EQ(clients.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_NE(clients.get().output.find("clients-exited"), std::string::npos);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - returned).count();
  return {status, seconds};
}

TEST(FailingHook, ErrorIsReturnedAndEveryClientExitsWithinSeconds) {
  auto [status, seconds] =
      run_failing_federation([](RoundPipeline& p) { return p.callbacks(); });
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("injected hook failure"), std::string::npos)
      << status.message();
  EXPECT_EQ(status.message().find("Exception raised from"), std::string::npos)
      << "one line, no libtorch backtrace: " << status.message();
  EXPECT_LT(seconds, 10.0);
}

// An exception that escapes a callback (not only a Status) still ends the run
// with an error and stops the clients.
TEST(FailingHook, ExceptionOutOfACallbackStillStopsTheClients) {
  auto [status, seconds] = run_failing_federation([](RoundPipeline& p) {
    RoundCallbacks callbacks = p.callbacks();
    callbacks.after_aggregation = [](const RoundOutcome&, ResNet18&) -> Status {
      TORCH_CHECK(false, "thrown past the pipeline");
      return Status::Ok();
    };
    return callbacks;
  });
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("thrown past the pipeline"), std::string::npos)
      << status.message();
  EXPECT_LT(seconds, 10.0);
}

}  // namespace
}  // namespace fedvar::aggregator
