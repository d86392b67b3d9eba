// A hook that fails mid-run (a libtorch error, as a CUDA out-of-memory would
// be) must not leave the federation hanging: the server returns the error
// with libtorch's message and tells every client to stop, so that the real
// `fedvar client` processes exit within seconds instead of waiting for their
// idle timeout (15 minutes by default).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <future>

#include "aggregator/after_hooks.h"
#include "aggregator/aggregation_rules.h"
#include "aggregator/round_recorder.h"
#include "aggregator/server.h"
#include "core/model_io.h"
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
  return std::async(std::launch::async, [script] {
    return testing::run_command("bash -c '" + script + "'");
  });
}

// Runs a 3-round federation of two clients with the record step
// `make_record` gives and, with `throwing_hook`, the throwing after-rule;
// returns the server's status and how many seconds the client processes took
// to exit after the server returned.
std::pair<Status, double> run_failing_federation(
    bool throwing_hook, const std::function<RecordFn(RoundRecorder&)>& make_record) {
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
  plugins::DefenseContext context;
  context.clean = test->slice(0, 100);
  context.normalization = Normalization::none(1);
  std::vector<std::unique_ptr<AfterHook>> after;
  if (throwing_hook)
    after.push_back(defense_hook(std::make_unique<ThrowingHook>(), context));
  Strategy strategy({}, make_aggregation_rule("fedavg").value(), std::move(after));
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions{1, 10, Stem::kCifar, 4});
  Server server(options, resnet_state(model).tensors, strategy);
  EXPECT_TRUE(server.bind().ok());
  EvalSpec eval{test->slice(0, 100), std::nullopt, 0, {}};
  eval.options.normalization = context.normalization;
  RoundRecorder recorder({}, eval);
  auto clients = start_clients(server.endpoint(), 2);
  const Status status = server.run(make_record(recorder));
  const auto returned = std::chrono::steady_clock::now();
  EXPECT_EQ(clients.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_NE(clients.get().output.find("clients-exited"), std::string::npos);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - returned).count();
  return {status, seconds};
}

TEST(FailingHook, ErrorIsReturnedAndEveryClientExitsWithinSeconds) {
  auto [status, seconds] =
      run_failing_federation(true, [](RoundRecorder& r) { return r.callback(); });
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("injected hook failure"), std::string::npos)
      << status.message();
  EXPECT_EQ(status.message().find("Exception raised from"), std::string::npos)
      << "one line, no libtorch backtrace: " << status.message();
  EXPECT_LT(seconds, 10.0);
}

// An exception that escapes the record step (not only a Status) still ends
// the run with an error and stops the clients.
TEST(FailingHook, ExceptionOutOfTheRecordStepStillStopsTheClients) {
  auto [status, seconds] = run_failing_federation(false, [](RoundRecorder&) -> RecordFn {
    return [](const RoundOutcome&, const StateDict&) -> Status {
      TORCH_CHECK(false, "thrown past the pipeline");
      return Status::Ok();
    };
  });
  EXPECT_EQ(status.code(), Code::kInternal);
  EXPECT_NE(status.message().find("thrown past the pipeline"), std::string::npos)
      << status.message();
  EXPECT_LT(seconds, 10.0);
}

}  // namespace
}  // namespace fedvar::aggregator
