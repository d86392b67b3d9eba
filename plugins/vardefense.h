// VarDefense (Fan, Du, Liu, Guo: "VarDefense: Variance-Based Defense against
// Poison Attack", 2021), sections 3.5-3.6.
//
//  * neuron = output channel of a conv layer; its score is the variance of
//    relu(bn(conv(x))) over (batch, H, W) on clean data, per mini-batch,
//    accumulated with momentum (3.6.3; see channel_stats.h);
//  * only the later layers: the last 2n convs of the residual path (n =
//    `layers`, the paper's "layer index"; downsample convs are not counted);
//  * layer-wise thresholds (3.6.1): a channel is compared with its own layer
//    only: it is purified when its variance < tau * mean variance of the
//    layer's channels not yet purified;
//  * dynamic incremental threshold (3.6.2): tau rises linearly from `start`
//    to `max` over `steps` steps; variances are re-measured before each step
//    and the model fine-tuned (`step_epochs`) after it, then `final_epochs`;
//  * loss (Eq. 1): alpha * CE + sum over purified layers of mean |w| (the L1
//    norm divided by the layer's weight count, so that one alpha fits every
//    width; the paper does not say how it scales the sum);
//  * purified channels are zeroed (conv filter, BN weight and bias) and kept
//    at zero, so the result is a plain ResNet18 (channel_mask.h);
//  * acc_budget=P (auto-alpha, the search of 4.3.1 done for the user): alpha
//    rises from 1e-4 by x10 until holdout ACC is within P points of the
//    model before purification; the report says which alpha was chosen.
// Choices the paper leaves open are options with the defaults above; the
// benchmark (bench/defenses) measures the alternatives.
#pragma once

#include <memory>

#include "plugins/defense.h"
#include "plugins/options.h"

namespace fedvar::plugins {

struct VarDefenseOptions {
  int layers = 2;             // n: purify the last 2n residual-path convs
  double alpha = 1.0;         // weight of cross-entropy in Eq. 1
  double momentum = 0.9;      // EMA coefficient of the variance estimate
  double start = 0.05;        // first threshold, x the layer's mean variance
  double max = 0.5;           // last threshold
  int steps = 5;              // threshold steps from start to max
  int step_epochs = 1;        // fine-tuning epochs after each step
  int final_epochs = 10;      // fine-tuning epochs after the last step
  double max_fraction = 0.9;  // never purify more of a layer than this
  double lr = 0.01;           // SGD, batch 128 (paper 4.1.5)
  int64_t batch_size = 128;
  double holdout = 0.1;       // share of the clean set kept for ACC checks
  double acc_budget = -1;     // >= 0: auto-alpha within this many points

  static Result<VarDefenseOptions> from(const Options& options);
};

// The convs VarDefense purifies: indices into model->conv_layers() of the
// last 2n residual-path convs, in forward order.
std::vector<size_t> purified_layer_indices(ResNet18& model, int layers);

class VarDefense : public Defense {
 public:
  explicit VarDefense(VarDefenseOptions options) : options_(options) {}
  std::string name() const override { return "vardefense"; }
  Result<nlohmann::json> apply(ResNet18& model, const DefenseContext& ctx) override;

 private:
  VarDefenseOptions options_;
};

}  // namespace fedvar::plugins
