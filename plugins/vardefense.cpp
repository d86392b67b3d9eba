#include "plugins/vardefense.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/model_io.h"
#include "core/stopwatch.h"
#include "plugins/batchnorm_stats.h"
#include "plugins/channel_mask.h"
#include "plugins/channel_stats.h"
#include "plugins/fine_tune.h"

namespace fedvar::plugins {
namespace {

constexpr double kScoreMomentum = 0.9;  // of the variance's moving average (3.6.3)
constexpr double kMaxShare = 0.9;       // never purify more of a layer than this
// Auto-alpha rises from `alpha` in half decades up to 1e5, from where on
// Eq. 1 is plain CE.
constexpr double kAutoAlphaLast = 1e5;

// Channels of one layer to purify at share tau, lowest variance first, within
// kMaxShare of the layer: those below the tau-quantile of the layer's
// variances, purified channels counting as 0, and any channel with zero
// variance (dead on clean data), so that ties at 0 do not hide the quantile.
std::vector<int64_t> select_channels(const torch::Tensor& variance, const ConvBn& layer,
                                     const ChannelMask& mask, double tau) {
  const int64_t channels = variance.size(0);
  auto v = variance.to(torch::kDouble).contiguous();
  std::vector<double> var(v.data_ptr<double>(), v.data_ptr<double>() + channels);
  std::vector<int64_t> alive;
  std::vector<double> all;
  for (int64_t c = 0; c < channels; ++c) {
    const bool purified = mask.is_purified(layer.name, c);
    all.push_back(purified ? 0.0 : var[c]);
    if (!purified) alive.push_back(c);
  }
  if (alive.empty()) return {};
  std::sort(all.begin(), all.end());
  const auto k = static_cast<int64_t>(std::floor(tau * channels));
  const double threshold =
      k >= channels ? std::numeric_limits<double>::infinity() : all[k];
  std::vector<int64_t> chosen;
  for (int64_t c : alive) {
    if (var[c] < threshold || (tau > 0 && var[c] == 0.0)) chosen.push_back(c);
  }
  std::sort(chosen.begin(), chosen.end(),
            [&](int64_t a, int64_t b) { return var[a] < var[b]; });
  const auto cap = static_cast<int64_t>(std::floor(kMaxShare * channels)) -
                   static_cast<int64_t>(mask.count(layer.name));
  if (static_cast<int64_t>(chosen.size()) > cap) chosen.resize(std::max<int64_t>(cap, 0));
  return chosen;
}

// Per output channel, the L2 norm of each conv's filter.
std::vector<torch::Tensor> filter_norms(std::vector<ConvBn>& convs,
                                        const std::vector<size_t>& indices) {
  std::vector<torch::Tensor> norms;
  for (size_t i : indices)
    norms.push_back(convs[i].conv->weight.detach().flatten(1).norm(2, 1));
  return norms;
}

// Scales each live filter back to its norm `before` and BN's running mean and
// variance with it (by s and s^2): the same function, but the L1 term's
// shrinkage, which would raise the effective lr of whoever trains the model
// next (a federation's clients), is undone. Returns the median scale per layer.
nlohmann::json restore_filter_norms(std::vector<ConvBn>& convs,
                                    const std::vector<size_t>& indices,
                                    const std::vector<torch::Tensor>& before) {
  torch::NoGradGuard no_grad;
  nlohmann::json medians = nlohmann::json::object();
  const auto after = filter_norms(convs, indices);
  for (size_t k = 0; k < indices.size(); ++k) {
    auto& layer = convs[indices[k]];
    const auto live = after[k] > 0;
    auto scale = torch::where(live, before[k] / after[k].clamp_min(1e-30),
                              torch::ones_like(after[k]));
    layer.conv->weight.mul_(scale.view({-1, 1, 1, 1}));
    layer.bn->running_mean.mul_(scale);
    layer.bn->running_var.mul_(scale.square());
    if (live.any().item<bool>()) {
      medians[layer.name] = scale.index({live}).median().item<double>();
    }
  }
  return medians;
}

// One purification of `model` with a given alpha, in place: per step,
// measure the variances, select and purify channels, fine-tune; then the
// final epochs.
class Purification {
 public:
  Purification(ResNet18& model, const Dataset& tune, const DefenseContext& ctx,
               const VarDefenseOptions& o, double alpha)
      : model_(model),
        tune_(tune),
        ctx_(ctx),
        o_(o),
        alpha_(alpha),
        indices_(purified_layer_indices(model, o.layers)),
        convs_(model->conv_layers()),
        original_bn_(batchnorm_stats(model)) {}

  Result<nlohmann::json> run() {
    const auto norms_before =
        o_.restore_norms ? filter_norms(convs_, indices_) : std::vector<torch::Tensor>{};
    nlohmann::json steps = nlohmann::json::array();
    for (int s = 0; s < o_.share_steps; ++s) {
      const double tau = o_.share_steps == 1
                             ? o_.share_max
                             : o_.share_start + (o_.share_max - o_.share_start) * s /
                                                    (o_.share_steps - 1);
      auto t0 = Clock::now();
      if (o_.recalibrate) recalibrate_batchnorm(model_, tune_, ctx_, o_.batch_size);
      const auto variances = measure();
      measure_s_ += seconds_since(t0);
      nlohmann::json step = {
          {"step", s + 1}, {"tau", tau}, {"purified", select(tau, variances)}};
      FEDVAR_RETURN_IF_ERROR(train(o_.step_epochs, /*cosine=*/false));
      ctx_.say("vardefense: step " + std::to_string(s + 1) + "/" +
               std::to_string(o_.share_steps) + " share " + std::to_string(tau) + ", " +
               std::to_string(mask_.total()) + " channel(s) purified");
      steps.push_back(step);
    }
    FEDVAR_RETURN_IF_ERROR(train(o_.final_epochs, /*cosine=*/true));
    if (o_.recalibrate) recalibrate_batchnorm(model_, tune_, ctx_, o_.batch_size);
    nlohmann::json scales;
    if (o_.restore_norms) scales = restore_filter_norms(convs_, indices_, norms_before);
    return nlohmann::json{{"alpha", alpha_},
                          {"steps", steps},
                          {"norm_scale", scales},
                          {"pruned", mask_.to_json()},
                          {"pruned_total", mask_.total()},
                          {"seconds", {{"measure", measure_s_}, {"fine_tune", tune_s_}}}};
  }

 private:
  // The score of every purified layer's channels, measured through the
  // BatchNorm statistics the model came with (the running ones put back after).
  std::vector<torch::Tensor> measure() {
    const BatchNormStats current = batchnorm_stats(model_);
    set_batchnorm_stats(model_, original_bn_);
    const StatOptions stat{
        o_.standardize ? ChannelStat::kStandardizedVariance : ChannelStat::kVariance,
        kScoreMomentum, o_.batch_size};
    auto variances =
        measure_channels(model_, tune_, ctx_.normalization, ctx_.device, indices_, stat);
    set_batchnorm_stats(model_, current);
    return variances;
  }

  // Purifies each layer's channels below share tau; their count per layer.
  nlohmann::json select(double tau, const std::vector<torch::Tensor>& variances) {
    nlohmann::json counts = nlohmann::json::object();
    for (size_t k = 0; k < indices_.size(); ++k) {
      const auto& layer = convs_[indices_[k]];
      auto chosen = select_channels(variances[k], layer, mask_, tau);
      mask_.purify(layer, chosen);
      counts[layer.name] = chosen.size();
    }
    return counts;
  }

  // Eq. 1 (divided by alpha) with the purified channels kept at zero.
  Status train(int epochs, bool cosine) {
    const auto t0 = Clock::now();
    TrainOptions opts = fine_tune_options(epochs);
    opts.lr = o_.lr;
    opts.batch_size = o_.batch_size;
    opts.seed = ctx_.seed;
    opts.cosine = cosine;
    TrainHooks hooks;
    hooks.loss = [this](ResNet18& m, const torch::Tensor& x, const torch::Tensor& y) {
      auto logits = m->forward(x);
      auto total = torch::nn::functional::cross_entropy(logits, y);
      for (size_t i : indices_)
        total = total + convs_[i].conv->weight.abs().sum() / alpha_;
      return BatchLoss{total, logits};
    };
    hooks.after_step = [this] { mask_.apply(); };
    const Status status = fine_tune(model_, tune_, ctx_, opts, hooks);
    tune_s_ += seconds_since(t0);
    return status;
  }

  ResNet18& model_;
  const Dataset& tune_;
  const DefenseContext& ctx_;
  const VarDefenseOptions& o_;
  const double alpha_;
  const std::vector<size_t> indices_;
  std::vector<ConvBn> convs_;
  const BatchNormStats original_bn_;
  ChannelMask mask_;
  double measure_s_ = 0, tune_s_ = 0;
};

void apply_preset(VarDefenseOptions& o) {
  if (o.preset == "federated") {
    o.restore_norms = true;
    o.final_epochs = 20;
  } else if (o.preset == "one-shot") {
    o.share_start = 0.03;
    o.share_max = 0.09;
    o.share_steps = 3;
    o.step_epochs = 0;
    o.final_epochs = 0;
    o.recalibrate = true;
    o.lr = 0.01;  // for final_epochs > 0
    o.alpha = 1000;
  }
}

}  // namespace

const OptionTable<VarDefenseOptions>& VarDefenseOptions::table() {
  using O = VarDefenseOptions;
  static const OptionTable<O> table =
      OptionTable<O>("vardefense")
          .choice("preset", &O::preset, {"none", "federated", "one-shot"},
                  "a recipe setting the defaults of the options after it", apply_preset)
          .integer("layers", &O::layers, 1, 8, "purify the last 2n residual-path convs")
          .real("alpha", &O::alpha, 1e-9, 1e12, "Eq. 1: loss = CE + ||w||_1 / alpha")
          .real("acc_budget", &O::acc_budget, -1.0, 100.0,
                ">= 0: raise alpha from its value (x sqrt 10, to 1e5) until holdout ACC "
                "stays within this many points")
          .real("share_start", &O::share_start, 0.0, 1.0,
                "share of each layer purified at the first step")
          .real("share_max", &O::share_max, 0.0, 1.0, "share purified at the last step")
          .integer("share_steps", &O::share_steps, 1, 1000, "steps from start to max")
          .integer("step_epochs", &O::step_epochs, 0, 1000,
                   "fine-tuning epochs after each step")
          .integer("final_epochs", &O::final_epochs, 0, 10000,
                   "fine-tuning epochs after the last step (cosine lr)")
          .real("lr", &O::lr, 0.0, 10.0, "SGD learning rate")
          .integer("batch_size", &O::batch_size, 1, 65536, "mini-batch size")
          .real("holdout", &O::holdout, 0.0, 0.9, "share of the clean set held out")
          .flag("recalibrate", &O::recalibrate,
                "re-estimate BatchNorm statistics before each measurement and at the end")
          .flag("restore_norms", &O::restore_norms,
                "give the purified layers' filters back their norms at the end")
          .flag("standardize", &O::standardize,
                "score the standardized conv output; 0: the paper's relu(bn(conv))")
          .check([](const O& o) {
            return o.share_start > o.share_max
                       ? Status::InvalidArgument(
                             "vardefense: share_start must not exceed share_max")
                       : Status::Ok();
          });
  return table;
}

std::vector<size_t> purified_layer_indices(ResNet18& model, int layers) {
  const auto convs = model->conv_layers();
  std::vector<size_t> main_path;
  for (size_t i = 0; i < convs.size(); ++i) {
    if (convs[i].name.find("downsample") == std::string::npos) main_path.push_back(i);
  }
  const size_t count = std::min(main_path.size(), static_cast<size_t>(2 * layers));
  return {main_path.end() - static_cast<std::ptrdiff_t>(count), main_path.end()};
}

Result<nlohmann::json> VarDefense::purify(ResNet18& model, const CleanSplit& split,
                                          double acc_before, const DefenseContext& ctx) {
  if (options_.acc_budget < 0) {
    return Purification(model, split.tune, ctx, options_, options_.alpha).run();
  }
  // Auto-alpha: the smallest alpha (strongest purification) from `alpha` up
  // that keeps the holdout within budget.
  nlohmann::json trials = nlohmann::json::array(), report;
  ResNet18 chosen{nullptr};
  double acc = 0;
  for (int k = 0;; ++k) {
    const double alpha = std::min(options_.alpha * std::pow(10.0, k / 2.0),
                                  std::max(options_.alpha, kAutoAlphaLast));
    chosen = clone_model(model);
    FEDVAR_ASSIGN_OR_RETURN(report,
                            Purification(chosen, split.tune, ctx, options_, alpha).run());
    FEDVAR_ASSIGN_OR_RETURN(acc, clean_accuracy(chosen, split.holdout, ctx));
    trials.push_back({{"alpha", alpha}, {"holdout_acc", acc}});
    ctx.say("vardefense: alpha " + std::to_string(alpha) + " holdout acc " +
            std::to_string(acc));
    if (acc_before - acc <= options_.acc_budget) break;
    if (alpha >= kAutoAlphaLast * (1 - 1e-9)) break;
  }
  report["alpha_trials"] = trials;
  report["budget_met"] = acc_before - acc <= options_.acc_budget;
  FEDVAR_RETURN_IF_ERROR(load_resnet_state(model, resnet_state(chosen)));
  return report;
}

}  // namespace fedvar::plugins
