#include "plugins/ibau.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "core/stopwatch.h"

namespace fedvar::plugins {
namespace {

namespace F = torch::nn::functional;

// d output / d inputs (times grad_outputs), zeros where an input is unused.
TensorList grads_or_zeros(const TensorList& outputs, const TensorList& inputs,
                          const TensorList& grad_outputs, bool retain_graph) {
  auto grads = torch::autograd::grad(outputs, inputs, grad_outputs, retain_graph,
                                     /*create_graph=*/false, /*allow_unused=*/true);
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) grads[i] = torch::zeros_like(inputs[i]);
  }
  return grads;
}

double distance(const TensorList& a, const TensorList& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) sum += (a[i] - b[i]).pow(2).sum().item<double>();
  return std::sqrt(sum);
}

// The batches of one run: a seeded shuffle of the tuning set, in unit floats.
std::vector<UnitBatch> make_batches(const Dataset& data, int64_t batch_size,
                                    at::Generator& gen, const torch::Device& device) {
  const auto order = torch::randperm(data.size(), gen, torch::kLong);
  std::vector<UnitBatch> batches;
  for (int64_t at = 0; at < data.size(); at += batch_size) {
    const auto idx = order.narrow(0, at, std::min(batch_size, data.size() - at));
    batches.push_back({to_unit_float(data.images.index_select(0, idx), device),
                       data.labels.index_select(0, idx).to(device)});
  }
  return batches;
}

// {0, 1} of shape [B, 1, 1, 1] with floor(B * portion) ones at random rows
// (the code's random.sample(range(B), int(B * portion))).
torch::Tensor portion_mask(int64_t batch, double portion, at::Generator& gen,
                           const torch::Tensor& like) {
  const auto count = static_cast<int64_t>(std::floor(batch * portion + 1e-9));
  auto mask = torch::zeros({batch, 1, 1, 1}, torch::kFloat);
  if (count > 0)
    mask.index_fill_(0, torch::randperm(batch, gen).narrow(0, 0, count), 1.0);
  return mask.to(like.options());
}

struct OuterStep {
  double loss = 0.0;
  int iterations = 0;
};

// One outer step on batch `b`: the hypergradient into the parameters' grads,
// then Adam's step.
OuterStep outer_step(ResNet18& model, torch::optim::Adam& adam,
                     const torch::Tensor& delta, const UnitBatch& first,
                     const UnitBatch& b, const Normalization& n, const IbauOptions& o,
                     at::Generator& gen) {
  PairLoss inner = [&](const TensorList& w, const TensorList&) {
    const auto logits = model->forward(normalize(first.x + w[0], n));
    return -F::cross_entropy(logits, first.y) + o.pert_decay * w[0].pow(2).sum();
  };
  const auto mask = portion_mask(b.x.size(0), o.portion, gen, b.x);
  double loss = 0.0;
  PairLoss outer = [&](const TensorList& w, const TensorList&) {
    const auto logits = model->forward(normalize(b.x + mask * w[0], n));
    auto ce = F::cross_entropy(logits, b.y);
    loss = ce.item<double>();
    return ce;
  };
  const TensorList params = model->parameters();
  auto hyper = fixed_point_hypergradient({delta}, params, o.k,
                                         gradient_descent_map(inner, o.inner_lr), outer);
  adam.zero_grad();
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = hyper.grads[i];
  adam.step();
  return {loss, hyper.iterations};
}

}  // namespace

const OptionTable<IbauOptions>& IbauOptions::table() {
  using O = IbauOptions;
  static const OptionTable<O> table =
      OptionTable<O>("i-bau")
          .integer("rounds", &O::rounds, 0, 10000,
                   "rounds: a universal perturbation, then one pass of unlearning")
          .integer("k", &O::k, 0, 1000, "fixed-point iterations of the hypergradient")
          .real("lr", &O::lr, 0.0, 1.0, "Adam learning rate of the model")
          .integer("batch_size", &O::batch_size, 1, 65536, "mini-batch size")
          .real("inner_lr", &O::inner_lr, 0.0, 100.0,
                "step of the inner gradient map the hypergradient differentiates")
          .real("pert_lr", &O::pert_lr, 0.0, 1000.0,
                "SGD lr of the universal perturbation (inner max)")
          .real("pert_decay", &O::pert_decay, 0.0, 100.0,
                "weight of the perturbation's squared L2 norm in the inner losses")
          .real("portion", &O::portion, 0.0, 1.0,
                "share of a batch's images carrying the perturbation in the outer loss")
          .real("radius", &O::radius, 0.0, 1000.0,
                "L2 bound of the perturbation in [0, 1] pixel units; 0: none")
          .real("holdout", &O::holdout, 0.0, 0.9, "share of the clean set held out");
  return table;
}

FixedPointMap gradient_descent_map(PairLoss loss, double step) {
  return [loss = std::move(loss), step](const TensorList& w, const TensorList& h) {
    auto grads = torch::autograd::grad({loss(w, h)}, w, {}, /*retain_graph=*/true,
                                       /*create_graph=*/true);
    TensorList out;
    for (size_t i = 0; i < w.size(); ++i) out.push_back(w[i] - step * grads[i]);
    return out;
  };
}

Hypergradient fixed_point_hypergradient(const TensorList& w_in, const TensorList& h,
                                        int k, const FixedPointMap& map,
                                        const PairLoss& outer, double tol) {
  TensorList w;
  for (const auto& t : w_in) w.push_back(t.detach().requires_grad_(true));
  const auto outer_loss = outer(w, h);
  const auto outer_w = grads_or_zeros({outer_loss}, w, {}, /*retain_graph=*/true);
  const auto outer_h = grads_or_zeros({outer_loss}, h, {}, /*retain_graph=*/false);
  const auto mapped = map(w, h);
  Hypergradient out;
  TensorList v;
  for (const auto& t : w) v.push_back(torch::zeros_like(t));
  while (out.iterations < k) {
    // From v = 0 the first product is zero: skip its backward pass.
    auto next = out.iterations == 0 ? TensorList(v.size())
                                    : grads_or_zeros(mapped, w, v, /*retain_graph=*/true);
    for (size_t i = 0; i < next.size(); ++i) {
      next[i] = next[i].defined() ? next[i] + outer_w[i] : outer_w[i].clone();
    }
    const double moved = distance(next, v);
    v = std::move(next);
    ++out.iterations;
    if (moved < tol) break;
  }
  out.grads = grads_or_zeros(mapped, h, v, /*retain_graph=*/false);
  for (size_t i = 0; i < out.grads.size(); ++i) out.grads[i] = out.grads[i] + outer_h[i];
  return out;
}

void project_l2(torch::Tensor& delta, double radius) {
  torch::NoGradGuard no_grad;
  const double norm = delta.norm().item<double>();
  if (norm > radius) delta.mul_(radius / norm);
}

torch::Tensor universal_perturbation(ResNet18& model,
                                     const std::vector<UnitBatch>& batches,
                                     const Normalization& n, const IbauOptions& o) {
  if (batches.empty()) return {};
  const auto& x0 = batches.front().x;
  auto delta = torch::zeros({1, x0.size(1), x0.size(2), x0.size(3)}, x0.options());
  for (const auto& b : batches) {
    torch::Tensor own;
    {
      torch::NoGradGuard no_grad;
      own = model->forward(normalize(b.x, n)).argmax(1);
    }
    auto d = delta.detach().requires_grad_(true);
    const auto logits = model->forward(normalize(b.x + d, n));
    const auto loss = -F::cross_entropy(logits, own) + o.pert_decay * d.pow(2).sum();
    const auto grad = torch::autograd::grad({loss}, {d})[0];
    delta = d.detach() - o.pert_lr * grad;
  }
  if (o.radius > 0.0) project_l2(delta, o.radius);
  return delta;
}

Result<nlohmann::json> Ibau::purify(ResNet18& model, const CleanSplit& split, double,
                                    const DefenseContext& ctx) {
  const auto start = Clock::now();
  if (split.tune.size() == 0)
    return Status::InvalidArgument("no clean images to unlearn on");
  auto gen = at::detail::createCPUGenerator(ctx.seed);
  const auto batches = make_batches(split.tune, options_.batch_size, gen, ctx.device);
  model->eval();  // the code's model.eval(): BatchNorm statistics stay frozen
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(options_.lr));
  nlohmann::json rounds = nlohmann::json::array();
  int64_t steps = 0;
  for (int r = 1; r <= options_.rounds; ++r) {
    const auto delta =
        universal_perturbation(model, batches, ctx.normalization, options_);
    const double norm = delta.norm().item<double>();
    double loss_sum = 0.0;
    int iterations = 0;
    for (const auto& b : batches) {
      const auto step = outer_step(model, adam, delta, batches.front(), b,
                                   ctx.normalization, options_, gen);
      loss_sum += step.loss;
      iterations += step.iterations;
      ++steps;
    }
    const double loss = loss_sum / static_cast<double>(batches.size());
    std::ostringstream line;
    line << "i-bau: round " << r << "/" << options_.rounds << " perturbation L2 norm "
         << norm << ", outer loss " << loss;
    ctx.say(line.str());
    rounds.push_back({{"round", r},
                      {"perturbation_norm", norm},
                      {"outer_loss", loss},
                      {"fixed_point_iterations", iterations}});
  }
  model->eval();
  return nlohmann::json{{"rounds", rounds},
                        {"steps", steps},
                        {"pruned", nlohmann::json::object()},
                        {"seconds", {{"unlearn", seconds_since(start)}}}};
}

}  // namespace fedvar::plugins
