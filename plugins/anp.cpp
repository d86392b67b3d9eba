#include "plugins/anp.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/model_io.h"
#include "core/stopwatch.h"
#include "plugins/channel_mask.h"

namespace fedvar::plugins {
namespace {

constexpr double kMaskMomentum = 0.9;  // ANP's mask optimizer
constexpr int kReportEvery = 100;      // iterations between progress lines

std::string fixed(double v, int digits) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(digits);
  out << v;
  return out.str();
}

// One iteration of ANP's mask_train(): the adversarial noise, then one mask
// step. `x` normalized, `y` labels. Returns the loss of the mask step.
double mask_step(ResNet18& net, NeuronPerturbation& perturbation, torch::optim::SGD& sgd,
                 const torch::Tensor& x, const torch::Tensor& y, const AnpOptions& o,
                 at::Generator& gen) {
  namespace F = torch::nn::functional;
  if (o.eps > 0.0) {
    perturbation.randomize_noise(o.eps, gen);
    for (int s = 0; s < o.pgd_steps; ++s) {
      perturbation.install(/*perturbed=*/true);
      auto loss = F::cross_entropy(net->forward(x), y);
      auto grads = torch::autograd::grad({loss}, perturbation.noises());
      perturbation.ascend_noise(grads, o.eps / o.pgd_steps, o.eps);
    }
  }
  sgd.zero_grad();
  auto loss = torch::zeros({}, x.options());
  if (o.eps > 0.0) {
    perturbation.install(/*perturbed=*/true);
    loss = (1.0 - o.alpha) * F::cross_entropy(net->forward(x), y);
  }
  perturbation.install(/*perturbed=*/false);
  loss = loss + o.alpha * F::cross_entropy(net->forward(x), y);
  auto grads = torch::autograd::grad({loss}, perturbation.masks());
  for (size_t i = 0; i < grads.size(); ++i) {
    perturbation.masks()[i].mutable_grad() = grads[i];
  }
  sgd.step();
  perturbation.clip_masks();
  return loss.item<double>();
}

}  // namespace

const OptionTable<AnpOptions>& AnpOptions::table() {
  using O = AnpOptions;
  static const OptionTable<O> table =
      OptionTable<O>("anp")
          .integer("iterations", &O::iterations, 0, 1000000,
                   "mask optimisation steps (mini-batches); 0: 30 passes over the "
                   "tuning set, at least 100, at most 2000")
          .real("eps", &O::eps, 0.0, 1.0, "bound of the multiplicative neuron noise")
          .integer("pgd_steps", &O::pgd_steps, 1, 100,
                   "signed ascent steps finding the noise, per iteration")
          .real("alpha", &O::alpha, 0.0, 1.0,
                "weight of the unperturbed loss (1 - alpha: the perturbed one)")
          .real("mask_lr", &O::mask_lr, 0.0, 10.0, "lr of the masks (SGD, momentum 0.9)")
          .integer("batch_size", &O::batch_size, 1, 65536, "mini-batch size")
          .real("max_acc_drop", &O::max_acc_drop, 0.0, 100.0,
                "holdout ACC points the pruning may cost (picks the threshold)")
          .real("threshold_step", &O::threshold_step, 0.001, 1.0,
                "step of the grid of mask thresholds tried")
          .real("threshold_max", &O::threshold_max, 0.0, 1.0, "largest threshold tried")
          .real("holdout", &O::holdout, 0.01, 0.9, "share of the clean set held out");
  return table;
}

int anp_iterations(const AnpOptions& options, int64_t tune_size) {
  if (options.iterations > 0) return options.iterations;
  const int64_t steps =
      (kAnpAutoPasses * tune_size + options.batch_size - 1) / options.batch_size;
  return static_cast<int>(std::clamp<int64_t>(steps, 100, 2000));
}

std::vector<double> threshold_grid(double step, double max) {
  std::vector<double> grid;
  if (!(step > 0.0)) return {0.0};
  const auto n = static_cast<int64_t>(std::floor(max / step + 1e-9));
  for (int64_t i = 0; i <= n; ++i) {
    grid.push_back(std::round(static_cast<double>(i) * step * 1e9) /
                   1e9);  // 0.35, not 0.35000000000000003
  }
  return grid;
}

std::optional<size_t> choose_threshold(const std::vector<ThresholdTrial>& trials,
                                       double acc_before, double max_drop) {
  std::optional<size_t> best;
  for (size_t i = 0; i < trials.size(); ++i) {
    if (trials[i].acc + 1e-9 < acc_before - max_drop) continue;
    if (!best || trials[i].threshold > trials[*best].threshold) best = i;
  }
  return best;
}

std::vector<std::vector<int64_t>> neurons_at_or_below(
    const std::vector<torch::Tensor>& masks, double threshold) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& mask : masks) {
    auto idx =
        mask.detach().to(torch::kCPU).le(threshold).nonzero().flatten().contiguous();
    const int64_t* p = idx.data_ptr<int64_t>();
    out.emplace_back(p, p + idx.numel());
  }
  return out;
}

NeuronPerturbation::NeuronPerturbation(std::vector<ConvBn> layers)
    : layers_(std::move(layers)) {
  for (const auto& l : layers_) {
    weights_.push_back(l.bn->weight);
    biases_.push_back(l.bn->bias);
    const auto opts = l.bn->weight.options().requires_grad(true);
    masks_.push_back(torch::ones(l.bn->weight.sizes(), opts));
    noises_.push_back(torch::zeros(l.bn->weight.sizes(), opts));
    noises_.push_back(torch::zeros(l.bn->weight.sizes(), opts));
  }
}

NeuronPerturbation::~NeuronPerturbation() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i].bn->weight = weights_[i];
    layers_[i].bn->bias = biases_[i];
  }
}

void NeuronPerturbation::install(bool perturbed) {
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto w = weights_[i].detach();
    const auto b = biases_[i].detach();
    auto& bn = layers_[i].bn;
    bn->weight = perturbed ? w * (masks_[i] + noises_[2 * i]) : w * masks_[i];
    bn->bias = perturbed ? b * (1.0 + noises_[2 * i + 1]) : b;
  }
}

void NeuronPerturbation::randomize_noise(double eps, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& n : noises_) {
    n.copy_(torch::empty(n.sizes(), torch::kFloat).uniform_(-eps, eps, gen));
  }
}

void NeuronPerturbation::ascend_noise(const std::vector<torch::Tensor>& grads,
                                      double step, double eps) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < noises_.size(); ++i) {
    noises_[i].add_(grads[i].sign(), step).clamp_(-eps, eps);
  }
}

void NeuronPerturbation::clip_masks() {
  torch::NoGradGuard no_grad;
  for (auto& m : masks_) m.clamp_(0.0, 1.0);
}

Result<std::vector<torch::Tensor>> learn_neuron_masks(ResNet18& model,
                                                      const Dataset& data,
                                                      const DefenseContext& ctx,
                                                      const AnpOptions& o) {
  if (data.size() == 0)
    return Status::InvalidArgument("no clean images to learn masks on");
  auto net = clone_model(model);
  net->to(ctx.device);
  for (auto& p : net->parameters()) p.set_requires_grad(false);
  net->train();  // batch statistics, as ANP's mask_train()
  NeuronPerturbation perturbation(net->conv_layers());
  torch::optim::SGD sgd(perturbation.masks(),
                        torch::optim::SGDOptions(o.mask_lr).momentum(kMaskMomentum));
  auto gen = at::detail::createCPUGenerator(ctx.seed);
  const auto images = data.images.to(ctx.device);
  const auto labels = data.labels.to(ctx.device);
  const int iterations = anp_iterations(o, data.size());
  double loss_sum = 0.0;
  int since_report = 0;
  for (int it = 1; it <= iterations; ++it) {
    auto idx =
        torch::randint(data.size(), {o.batch_size}, gen, torch::kLong).to(ctx.device);
    auto x = normalize(to_unit_float(images.index_select(0, idx), ctx.device),
                       ctx.normalization);
    loss_sum += mask_step(net, perturbation, sgd, x, labels.index_select(0, idx), o, gen);
    ++since_report;
    if (it % kReportEvery == 0 || it == iterations) {
      auto all = torch::cat(perturbation.masks()).detach();
      ctx.say("anp: iteration " + std::to_string(it) + "/" + std::to_string(iterations) +
              " loss " + fixed(loss_sum / since_report, 4) +
              ", masks below 0.2: " + std::to_string(all.le(0.2).sum().item<int64_t>()) +
              "/" + std::to_string(all.numel()));
      loss_sum = 0.0;
      since_report = 0;
    }
  }
  std::vector<torch::Tensor> masks;
  for (const auto& m : perturbation.masks()) masks.push_back(m.detach().to(torch::kCPU));
  return masks;
}

Result<nlohmann::json> Anp::purify(ResNet18& model, const CleanSplit& split,
                                   double acc_before, const DefenseContext& ctx) {
  const auto start = Clock::now();
  FEDVAR_ASSIGN_OR_RETURN(auto masks,
                          learn_neuron_masks(model, split.tune, ctx, options_));
  const double learn_s = seconds_since(start);
  // Pruning is nested in the threshold, so one copy is pruned further at each.
  auto trial = clone_model(model);
  auto trial_layers = trial->conv_layers();
  ChannelMask trial_mask;
  std::vector<ThresholdTrial> trials;
  nlohmann::json sweep = nlohmann::json::array();
  for (double t : threshold_grid(options_.threshold_step, options_.threshold_max)) {
    const auto below = neurons_at_or_below(masks, t);
    for (size_t i = 0; i < below.size(); ++i) {
      if (!below[i].empty()) trial_mask.purify(trial_layers[i], below[i]);
    }
    FEDVAR_ASSIGN_OR_RETURN(const double acc, clean_accuracy(trial, split.holdout, ctx));
    trials.push_back({t, static_cast<int64_t>(trial_mask.total()), acc});
    sweep.push_back({{"threshold", t}, {"pruned", trial_mask.total()}, {"acc", acc}});
    ctx.say("anp: threshold " + fixed(t, 3) + " prunes " +
            std::to_string(trial_mask.total()) + " neurons, holdout ACC " +
            fixed(acc, 2));
  }
  const auto choice = choose_threshold(trials, acc_before, options_.max_acc_drop);
  ChannelMask mask;
  auto layers = model->conv_layers();
  if (choice) {
    const auto below = neurons_at_or_below(masks, trials[*choice].threshold);
    for (size_t i = 0; i < below.size(); ++i) {
      if (!below[i].empty()) mask.purify(layers[i], below[i]);
    }
  }
  ctx.say("anp: " +
          (choice ? "threshold " + fixed(trials[*choice].threshold, 3)
                  : std::string("no threshold within the ACC budget")) +
          ", pruned " + std::to_string(mask.total()) + " neurons");
  return nlohmann::json{
      {"iterations", anp_iterations(options_, split.tune.size())},
      {"threshold",
       choice ? nlohmann::json(trials[*choice].threshold) : nlohmann::json()},
      {"thresholds", sweep},
      {"pruned", mask.to_json()},
      {"pruned_total", mask.total()},
      {"seconds", {{"masks", learn_s}, {"prune", seconds_since(start) - learn_s}}}};
}

}  // namespace fedvar::plugins
