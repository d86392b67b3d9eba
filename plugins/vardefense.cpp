#include "plugins/vardefense.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/model_io.h"
#include "plugins/channel_mask.h"
#include "plugins/channel_stats.h"
#include "plugins/fine_tune.h"

namespace fedvar::plugins {
namespace {

// Auto-alpha's range, in half decades: at alpha 10 the L1 shrinks weights by
// lr/10 a step and leaves little of the purified layers; from 1e5 (10 x
// sqrt(10)^8) on Eq. 1 is plain CE.
constexpr double kAutoAlphaFirst = 10;
constexpr int kAutoAlphaSteps = 8;

void say(const DefenseContext& ctx, const std::string& line) {
  if (ctx.progress) ctx.progress(line);
}

// Channels of one layer to purify at threshold tau, lowest variance first,
// within the cap (zero-variance channels always). kMean: variance < tau x the mean
// variance of the channels still alive. kQuantile: variance below the tau-quantile of the
// layer, the purified channels counting as 0 (so tau is the share purified after it).
std::vector<int64_t> select_channels(const torch::Tensor& variance, const ConvBn& layer,
                                     const ChannelMask& mask, double tau,
                                     const VarDefenseOptions& o) {
  const int64_t channels = variance.size(0);
  auto v = variance.to(torch::kDouble).contiguous();
  std::vector<double> var(v.data_ptr<double>(), v.data_ptr<double>() + channels);
  std::vector<int64_t> alive;
  std::vector<double> all;
  double sum = 0;
  for (int64_t c = 0; c < channels; ++c) {
    const bool purified = mask.is_purified(layer.name, c);
    all.push_back(purified ? 0.0 : var[c]);
    if (purified) continue;
    alive.push_back(c);
    sum += var[c];
  }
  if (alive.empty()) return {};
  double threshold = tau * sum / static_cast<double>(alive.size());
  if (o.threshold == ThresholdMode::kQuantile) {
    std::sort(all.begin(), all.end());
    const auto k = static_cast<int64_t>(std::floor(tau * channels));
    threshold = k >= channels ? std::numeric_limits<double>::infinity() : all[k];
  }
  // A channel with zero variance is dead on clean data (a constant output,
  // e.g. one purified in an earlier federated round and not revived): it is
  // taken at any tau > 0, so that ties at 0 do not hide the quantile.
  std::vector<int64_t> chosen;
  for (int64_t c : alive) {
    if (var[c] < threshold || (tau > 0 && var[c] == 0.0)) chosen.push_back(c);
  }
  std::sort(chosen.begin(), chosen.end(),
            [&](int64_t a, int64_t b) { return var[a] < var[b]; });
  const auto cap = static_cast<int64_t>(std::floor(o.max_fraction * channels)) -
                   static_cast<int64_t>(mask.count(layer.name));
  if (static_cast<int64_t>(chosen.size()) > cap) chosen.resize(std::max<int64_t>(cap, 0));
  return chosen;
}

// 1 for the floor(share x channels) channels of lowest variance, 0 for the
// others (purified channels have variance 0 and come first; the mask keeps
// their filters at zero whatever the L1 does).
torch::Tensor low_variance_filters(const torch::Tensor& variance, double share) {
  const int64_t channels = variance.size(0);
  const auto count = static_cast<int64_t>(std::floor(share * channels));
  auto chosen = torch::zeros({channels});
  if (count > 0) chosen.index_fill_(0, variance.cpu().argsort().slice(0, 0, count), 1.0);
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
// variance with it (by s and s^2): the same function in eval and train mode
// (BN normalizes the scale away), but the L1 term's shrinkage, which would
// raise the effective lr of whoever trains the model next (a federation's
// clients), is undone. Returns the median scale applied per layer.
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

// One purification run with a given alpha, in place. Returns its report.
Result<nlohmann::json> purify(ResNet18& model, const Dataset& tune,
                              const DefenseContext& ctx, const VarDefenseOptions& o,
                              double alpha) {
  const auto indices = purified_layer_indices(model, o.layers);
  auto convs = model->conv_layers();
  ChannelMask mask;
  const auto norms_before =
      o.restore_norms ? filter_norms(convs, indices) : std::vector<torch::Tensor>{};
  ResNet18 teacher = o.distill > 0 ? clone_model(model) : ResNet18{nullptr};
  // l1_share < 1: per layer, 1 for the filters of the lower-variance channels
  // the L1 acts on, 0 for the others (set at each step); empty: every filter.
  std::vector<torch::Tensor> l1_share;
  const LossFn loss = [&](ResNet18& m, const torch::Tensor& x, const torch::Tensor& y) {
    auto logits = m->forward(x);
    auto total = torch::nn::functional::cross_entropy(logits, y);
    if (teacher) {
      total = (1 - o.distill) * total +
              o.distill * distillation_loss(logits, teacher, x, o.temperature);
    }
    for (size_t k = 0; k < indices.size(); ++k) {
      const auto& w = convs[indices[k]].conv->weight;
      total = total + (l1_share.empty() ? w.abs().sum()
                                        : (w.abs().sum({1, 2, 3}) * l1_share[k]).sum()) /
                          alpha;
    }
    return total;
  };
  FineTuneOptions ft{o.step_epochs, o.lr, 0.9, 5e-4, o.batch_size, ctx.seed};
  ft.augment = o.augment;
  StatOptions stat{
      o.standardize ? ChannelStat::kStandardizedVariance : ChannelStat::kVariance,
      o.momentum, o.batch_size};
  // The statistics the model came with (original_bn; see the header): put in
  // for each measurement, the running ones put back after it.
  const BatchNormStats original =
      o.original_bn ? batchnorm_stats(model) : BatchNormStats{};
  auto measure = [&] {
    const BatchNormStats current =
        o.original_bn ? batchnorm_stats(model) : BatchNormStats{};
    if (o.original_bn) set_batchnorm_stats(model, original);
    auto variances =
        measure_channels(model, tune, ctx.normalization, ctx.device, indices, stat);
    if (o.original_bn) set_batchnorm_stats(model, current);
    return variances;
  };
  nlohmann::json steps = nlohmann::json::array();
  double measure_s = 0, tune_s = 0;
  for (int s = 0; s < o.steps; ++s) {
    const double tau =
        o.steps == 1 ? o.max : o.start + (o.max - o.start) * s / (o.steps - 1);
    auto t0 = Clock::now();
    if (o.recalibrate) recalibrate_batchnorm(model, tune, ctx, o.batch_size);
    auto variances = measure();
    measure_s += seconds_since(t0);
    nlohmann::json step = {{"step", s + 1}, {"tau", tau}};
    for (size_t k = 0; k < indices.size(); ++k) {
      const auto& layer = convs[indices[k]];
      auto chosen = select_channels(variances[k], layer, mask, tau, o);
      mask.purify(layer, chosen);
      step["purified"][layer.name] = chosen.size();
    }
    if (o.l1_share < 1) {
      l1_share.clear();
      for (size_t k = 0; k < indices.size(); ++k) {
        l1_share.push_back(low_variance_filters(variances[k], o.l1_share).to(ctx.device));
        step["l1_filters"][convs[indices[k]].name] = l1_share.back().sum().item<double>();
      }
    }
    t0 = Clock::now();
    FEDVAR_RETURN_IF_ERROR(fine_tune(model, tune, ctx, ft, loss, [&] { mask.apply(); }));
    tune_s += seconds_since(t0);
    say(ctx, "vardefense: step " + std::to_string(s + 1) + "/" + std::to_string(o.steps) +
                 " tau " + std::to_string(tau) + ", " + std::to_string(mask.total()) +
                 " channel(s) purified");
    steps.push_back(step);
  }
  ft.epochs = o.final_epochs;
  ft.cosine = o.cosine;
  if (o.final_lr >= 0) ft.lr = o.final_lr;
  auto t0 = Clock::now();
  FEDVAR_RETURN_IF_ERROR(fine_tune(model, tune, ctx, ft, loss, [&] { mask.apply(); }));
  if (o.recalibrate || o.final_recalibrate) {
    recalibrate_batchnorm(model, tune, ctx, o.batch_size);
  }
  tune_s += seconds_since(t0);
  nlohmann::json scales;
  if (o.restore_norms) scales = restore_filter_norms(convs, indices, norms_before);
  if (o.revive) mask.revive(convs, ctx.seed);
  return nlohmann::json{{"alpha", alpha},
                        {"steps", steps},
                        {"norm_scale", scales},
                        {"pruned", mask.to_json()},
                        {"pruned_total", mask.total()},
                        {"seconds", {{"measure", measure_s}, {"fine_tune", tune_s}}}};
}

}  // namespace

Result<VarDefenseOptions> VarDefenseOptions::from(const Options& options) {
  VarDefenseOptions o;
  OptionReader r("vardefense", options);
  o.preset = r.choice("preset", o.preset, {"none", "federated", "one-shot"});
  if (o.preset == "federated") {  // the defaults the options below start from
    o.restore_norms = true;
    o.final_epochs = 20;
  } else if (o.preset == "one-shot") {
    o.start = 0.03;
    o.max = 0.09;
    o.steps = 3;
    o.step_epochs = 0;
    o.final_epochs = 0;
    o.recalibrate = true;
    o.lr = 0.01;  // for final_epochs > 0
    o.alpha = 1000;
  }
  o.layers = r.get("layers", o.layers, 1, 8);
  o.alpha = r.get("alpha", o.alpha, 1e-9, 1e12);
  o.momentum = r.get("momentum", o.momentum, 0.0, 0.999999);
  o.start = r.get("start", o.start, 0.0, 1e6);
  o.max = r.get("max", o.max, 0.0, 1e6);
  o.steps = r.get("steps", o.steps, 1, 1000);
  o.step_epochs = r.get("step_epochs", o.step_epochs, 0, 1000);
  o.final_epochs = r.get("final_epochs", o.final_epochs, 0, 10000);
  o.max_fraction = r.get("max_fraction", o.max_fraction, 0.0, 1.0);
  o.lr = r.get("lr", o.lr, 0.0, 10.0);
  o.final_lr = r.get("final_lr", o.final_lr, -1.0, 10.0);
  o.recalibrate = r.get("recalibrate", o.recalibrate ? 1 : 0, 0, 1) == 1;
  o.final_recalibrate =
      r.get("final_recalibrate", o.final_recalibrate ? 1 : 0, 0, 1) == 1;
  o.original_bn = r.get("original_bn", o.original_bn ? 1 : 0, 0, 1) == 1;
  o.standardize = r.get("standardize", o.standardize ? 1 : 0, 0, 1) == 1;
  o.restore_norms = r.get("restore_norms", o.restore_norms ? 1 : 0, 0, 1) == 1;
  o.revive = r.get("revive", o.revive ? 1 : 0, 0, 1) == 1;
  o.augment = r.get("augment", o.augment ? 1 : 0, 0, 1) == 1;
  o.l1_share = r.get("l1_share", o.l1_share, 0.0, 1.0);
  o.batch_size = r.get("batch_size", static_cast<int>(o.batch_size), 1, 65536);
  o.cosine = r.get("cosine", o.cosine ? 1 : 0, 0, 1) == 1;
  o.distill = r.get("distill", o.distill, 0.0, 1.0);
  o.temperature = r.get("temperature", o.temperature, 0.01, 100.0);
  o.holdout = r.get("holdout", o.holdout, 0.0, 0.9);
  o.threshold = r.get("quantile", o.threshold == ThresholdMode::kQuantile ? 1 : 0, 0, 1)
                    ? ThresholdMode::kQuantile
                    : ThresholdMode::kMean;
  o.acc_budget = r.get("acc_budget", o.acc_budget, -1.0, 100.0);
  FEDVAR_RETURN_IF_ERROR(r.finish());
  if (o.start > o.max) {
    return Status::InvalidArgument("vardefense: start must not exceed max");
  }
  return o;
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

Result<nlohmann::json> VarDefense::apply(ResNet18& model, const DefenseContext& ctx) {
  const auto start = Clock::now();
  FEDVAR_ASSIGN_OR_RETURN(auto split,
                          split_clean(ctx.clean, options_.holdout, ctx.split_seed()));
  model->to(ctx.device);
  const double acc_before = clean_accuracy(model, split.holdout, ctx);
  nlohmann::json report;
  if (options_.acc_budget < 0) {
    FEDVAR_ASSIGN_OR_RETURN(report,
                            purify(model, split.tune, ctx, options_, options_.alpha));
  } else {
    // Auto-alpha: the smallest alpha (strongest purification) within budget.
    nlohmann::json trials = nlohmann::json::array();
    ResNet18 chosen{nullptr};
    for (int k = 0; k <= kAutoAlphaSteps; ++k) {
      const double alpha = kAutoAlphaFirst * std::pow(10.0, k / 2.0);
      auto trial = clone_model(model);
      FEDVAR_ASSIGN_OR_RETURN(report, purify(trial, split.tune, ctx, options_, alpha));
      const double acc = clean_accuracy(trial, split.holdout, ctx);
      trials.push_back({{"alpha", alpha}, {"holdout_acc", acc}});
      say(ctx, "vardefense: alpha " + std::to_string(alpha) + " holdout acc " +
                   std::to_string(acc));
      chosen = trial;
      if (acc_before - acc <= options_.acc_budget) break;
    }
    report["alpha_trials"] = trials;
    report["budget_met"] =
        acc_before - clean_accuracy(chosen, split.holdout, ctx) <= options_.acc_budget;
    FEDVAR_RETURN_IF_ERROR(load_resnet_state(model, resnet_state(chosen)));
  }
  report.update(holdout_report(name(), model, split, acc_before, ctx));
  report["layers"] = options_.layers;
  // The schedule that ran, so that a report read later says what produced it.
  const auto& o = options_;
  report["options"] = {{"preset", o.preset},
                       {"layers", o.layers},
                       {"alpha", o.alpha},
                       {"momentum", o.momentum},
                       {"start", o.start},
                       {"max", o.max},
                       {"steps", o.steps},
                       {"step_epochs", o.step_epochs},
                       {"final_epochs", o.final_epochs},
                       {"lr", o.lr},
                       {"final_lr", o.final_lr},
                       {"cosine", o.cosine},
                       {"recalibrate", o.recalibrate},
                       {"final_recalibrate", o.final_recalibrate},
                       {"original_bn", o.original_bn},
                       {"standardize", o.standardize},
                       {"restore_norms", o.restore_norms},
                       {"revive", o.revive},
                       {"augment", o.augment},
                       {"l1_share", o.l1_share},
                       {"distill", o.distill},
                       {"temperature", o.temperature},
                       {"quantile", o.threshold == ThresholdMode::kQuantile},
                       {"max_fraction", o.max_fraction},
                       {"batch_size", o.batch_size},
                       {"holdout", o.holdout},
                       {"acc_budget", o.acc_budget}};
  report["seconds"]["total"] = seconds_since(start);
  return report;
}

}  // namespace fedvar::plugins
