// Fuzzes the parsers of command-line specs with one text each run: plugin
// options ("k=v,..." and an OptionTable), rule specs ("name:opts"), round
// schedules, normalizations, triggers, index ranges and aggregation rules.
// Where a parser documents a round trip (to_string, then parse), it is checked.
#include <climits>
#include <cstdint>
#include <string>

#include "aggregator/aggregation_rules.h"
#include "core/dataset.h"
#include "core/normalization.h"
#include "core/round_schedule.h"
#include "core/trigger.h"
#include "fuzz/fuzz_check.h"
#include "plugins/option_table.h"
#include "plugins/options.h"

namespace {

using fedvar::fuzz::check;

// One option of each kind a defense can declare (plugins/option_table.h).
struct SampleOptions {
  double alpha = 1.0;
  int layers = 2;
  bool adaptive = false;
  std::string preset = "none";
};

fedvar::plugins::OptionTable<SampleOptions> make_sample_table() {
  fedvar::plugins::OptionTable<SampleOptions> table("sample");
  table
      .choice("preset", &SampleOptions::preset, {"none", "fast", "full"}, "a preset",
              [](SampleOptions& o) {
                if (o.preset == "full") o.layers = 4;
              })
      .real("alpha", &SampleOptions::alpha, 0.0, 10.0, "a real")
      .integer("layers", &SampleOptions::layers, 0, 64, "an integer")
      .flag("adaptive", &SampleOptions::adaptive, "a flag");
  return table;
}

const fedvar::plugins::OptionTable<SampleOptions>& sample_table() {
  static const auto table = make_sample_table();
  return table;
}

void fuzz_options(const std::string& text) {
  const fedvar::plugins::Spec spec = fedvar::plugins::split_spec(text);
  check(spec.name.size() + spec.options.size() <= text.size(),
        "split_spec grew the text");
  (void)fedvar::plugins::parse_options(spec.options);
  fedvar::Result<SampleOptions> options = sample_table().parse(text);
  if (options.ok()) {
    check(options->alpha >= 0.0 && options->alpha <= 10.0, "alpha out of its range");
    check(options->layers >= 0 && options->layers <= 64, "layers out of its range");
    (void)sample_table().echo(options.value()).dump();
  }
}

void fuzz_schedule(const std::string& text) {
  fedvar::Result<fedvar::RoundSchedule> rounds = fedvar::RoundSchedule::parse(text);
  if (!rounds.ok()) return;
  for (int round : {1, 2, 1000, INT_MAX}) (void)rounds->contains(round);
}

void fuzz_normalization(const std::string& text) {
  fedvar::Result<fedvar::Normalization> n = fedvar::Normalization::parse(text);
  if (!n.ok()) return;
  check(!n->mean.empty() && n->mean.size() == n->std.size(),
        "one mean and std per channel");
  check(fedvar::Normalization::parse(n->to_string()).ok(),
        "a normalization's to_string() does not parse: " + n->to_string());
}

void fuzz_trigger(const std::string& text) {
  fedvar::Result<fedvar::TriggerSpec> spec = fedvar::parse_trigger(text);
  if (!spec.ok()) return;
  const std::string canonical = spec->to_string();
  fedvar::Result<fedvar::TriggerSpec> again = fedvar::parse_trigger(canonical);
  check(again.ok() && again.value() == spec.value(),
        "parse_trigger(to_string()) differs for " + canonical);
  (void)fedvar::check_trigger_fits(spec.value(), /*height=*/32, /*width=*/32);
  if (spec->pieces <= 64) (void)fedvar::dba_pieces(spec.value());
}

void fuzz_range(const std::string& text) {
  for (int64_t size : {int64_t{0}, int64_t{1}, int64_t{60000}}) {
    fedvar::Result<fedvar::IndexRange> range = fedvar::parse_range(text, size);
    if (!range.ok()) continue;
    check(range->begin >= 0 && range->begin < range->end && range->end <= size,
          "parse_range gave a range outside the split: " + text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz_options(text);
  fuzz_schedule(text);
  fuzz_normalization(text);
  fuzz_trigger(text);
  fuzz_range(text);
  (void)fedvar::aggregator::make_aggregation_rule(text);
  return 0;
}
