// bench/aggregate's C++ side: times one aggregation rule of the server's
// Strategy on N updates of a full-width ResNet18 (11.2 M parameters each) and
// prints one JSON line: the rule, N, the seconds spent in the rule (adding the
// updates as they arrive and finishing the round; making the updates is not
// counted) and the process's peak RSS. Each update is made as it "arrives"
// and dropped after add(), as the server does, so a streamed rule's memory
// does not grow with N. Usage: fedvar_bench_aggregate RULE N
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>

#include "aggregator/strategy_specs.h"
#include "core/model_io.h"
#include "core/stopwatch.h"

namespace {

using fedvar::StateDict;

// The update of client `i`: `global` plus small seeded noise.
StateDict client_update(const StateDict& global, int i) {
  torch::manual_seed(1000 + i);
  StateDict update;
  for (const auto& [name, t] : global) {
    update[name] =
        at::isFloatingType(t.scalar_type()) ? t + 0.01 * torch::randn_like(t) : t.clone();
  }
  return update;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: fedvar_bench_aggregate RULE N\n";
    return 2;
  }
  const std::string rule = argv[1];
  const int n = std::atoi(argv[2]);
  at::set_num_threads(1);
  torch::manual_seed(0);
  fedvar::ResNet18 model(fedvar::ResNetOptions{3, 10, fedvar::Stem::kCifar, 64});
  const StateDict global = fedvar::resnet_state(model).tensors;
  auto strategy = fedvar::aggregator::make_strategy({{}, rule, {}}, {});
  if (!strategy.ok()) {
    std::cerr << "error: " << strategy.status().message() << "\n";
    return 2;
  }
  const fedvar::protocol::TrainingConfig training;
  const fedvar::aggregator::RoundContext ctx{1, &global, &training, 0};
  auto round = (*strategy)->start_round(ctx);
  double seconds = 0;
  for (int i = 0; i < n; ++i) {
    StateDict update = client_update(global, i);
    const auto start = fedvar::Clock::now();
    const auto added = round->add({"c" + std::to_string(i), std::move(update), 100, 1.0});
    seconds += fedvar::seconds_since(start);
    if (!added.ok()) {
      std::cerr << "error: " << added.message() << "\n";
      return 1;
    }
  }
  std::vector<fedvar::aggregator::Verdict> verdicts;
  const auto start = fedvar::Clock::now();
  const auto result = round->finish(verdicts);
  seconds += fedvar::seconds_since(start);
  if (!result.ok()) {
    std::cerr << "error: " << result.status().message() << "\n";
    return 1;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  int64_t parameters = 0;
  for (const auto& [name, t] : global) parameters += t.numel();
  std::cout << "{\"rule\": \"" << rule << "\", \"n\": " << n
            << ", \"parameters\": " << parameters << ", \"seconds\": " << seconds
            << ", \"peak_rss_mb\": " << usage.ru_maxrss / 1024.0 << "}" << std::endl;
  return 0;
}
