#include "plugins/sau.h"

#include <torch/torch.h>

#include <sstream>

#include "core/model_io.h"
#include "core/stopwatch.h"

namespace fedvar::plugins {
namespace {

namespace F = torch::nn::functional;

// Per-epoch counts of the unlearning steps (sau.py's own criteria there: a
// miss is against the true label).
struct EpochCounts {
  double loss_sum = 0.0;
  int64_t batches = 0;
  int64_t images = 0;
  int64_t shared = 0;    // both models miss x + delta, with the same label
  int64_t ref_miss = 0;  // L_sar's rows: the reference is fooled
  int64_t pgd_steps = 0;
  double share(int64_t n) const { return images > 0 ? 100.0 * n / images : 0.0; }
};

// One unlearning step of sau.py on unit images x, labels y and their
// perturbation delta: the loss, then one optimizer step.
void unlearn_step(ResNet18& model, ResNet18& ref, torch::optim::Adam& adam,
                  const torch::Tensor& x, const torch::Tensor& y,
                  const torch::Tensor& delta, const Normalization& n, const SauOptions& o,
                  EpochCounts& counts) {
  const int64_t batch = x.size(0);
  const auto xn = normalize(x, n);
  const auto xp = normalize(x + delta, n);
  const auto both = model->forward(torch::cat({xn, xp}));
  const auto logits = both.narrow(0, 0, batch);
  const auto per_logits = both.narrow(0, batch, batch);
  torch::Tensor base_ref, pred_ref;
  {
    torch::NoGradGuard no_grad;
    base_ref = ref->forward(xn).argmax(1);
    pred_ref = ref->forward(xp).argmax(1);
  }
  const auto pred = per_logits.detach().argmax(1);
  const auto ref_miss = pred_ref.ne(y) & pred_ref.ne(base_ref);
  const auto shared = pred.ne(y) & ref_miss & pred.eq(pred_ref);
  auto loss = o.lambda1 * F::cross_entropy(logits, y) +
              o.lambda2 * F::cross_entropy(per_logits, y) +
              o.lambda3 * shared_unlearning_loss(per_logits, pred_ref, ref_miss);
  adam.zero_grad();
  loss.backward();
  adam.step();
  counts.loss_sum += loss.item<double>();
  counts.batches += 1;
  counts.images += batch;
  counts.shared += shared.sum().item<int64_t>();
  counts.ref_miss += ref_miss.sum().item<int64_t>();
}

std::string epoch_line(int epoch, int epochs, const EpochCounts& c) {
  std::ostringstream line;
  line.setf(std::ios::fixed);
  line.precision(2);
  line << "sau: epoch " << epoch << "/" << epochs << " loss "
       << c.loss_sum / std::max<int64_t>(c.batches, 1) << ", shared adversarial "
       << c.share(c.shared) << "%, reference fooled " << c.share(c.ref_miss)
       << "%, PGD steps " << c.pgd_steps;
  return line.str();
}

}  // namespace

const OptionTable<SauOptions>& SauOptions::table() {
  using O = SauOptions;
  static const OptionTable<O> table =
      OptionTable<O>("sau")
          .integer("epochs", &O::epochs, 0, 10000, "passes over the tuning set")
          .real("lr", &O::lr, 0.0, 1.0, "Adam learning rate")
          .integer("batch_size", &O::batch_size, 1, 65536, "mini-batch size")
          .real("eps", &O::eps, 0.0, 1.0,
                "L-inf bound of the perturbation, in [0, 1] pixel units")
          .integer("pgd_steps", &O::pgd_steps, 1, 100, "shared PGD steps per batch")
          .real("pgd_lr", &O::pgd_lr, 0.0, 1.0, "shared PGD signed step size")
          .real("beta1", &O::beta1, 0.0, 100.0, "PGD weight of the adversarial loss")
          .real("beta2", &O::beta2, 0.0, 100.0, "PGD weight of the sharing (JS) loss")
          .real("lambda1", &O::lambda1, 0.0, 100.0, "weight of the clean CE")
          .real("lambda2", &O::lambda2, 0.0, 100.0,
                "weight of the CE of perturbed images (true labels)")
          .real("lambda3", &O::lambda3, 0.0, 100.0,
                "weight of the shared adversarial unlearning loss")
          .real("holdout", &O::holdout, 0.0, 0.9, "share of the clean set held out");
  return table;
}

void project_linf(torch::Tensor& delta, double bound) {
  torch::NoGradGuard no_grad;
  delta.clamp_(-bound, bound);
}

torch::Tensor shared_mask(const torch::Tensor& pred, const torch::Tensor& pred_ref,
                          const torch::Tensor& base, const torch::Tensor& base_ref) {
  return pred.ne(base) & pred_ref.ne(base_ref) & pred.eq(pred_ref);
}

torch::Tensor js_divergence(const torch::Tensor& logits_a,
                            const torch::Tensor& logits_b) {
  const auto p = F::softmax(logits_a, F::SoftmaxFuncOptions(1)).clamp_min(1e-8);
  const auto q = F::softmax(logits_b, F::SoftmaxFuncOptions(1)).clamp_min(1e-8);
  const auto m = 0.5 * (p + q);
  const auto js = 0.5 * (p * p.log() + q * q.log()) - 0.5 * (p * m.log() + q * m.log());
  return js.sum(1);
}

torch::Tensor shared_unlearning_loss(const torch::Tensor& logits,
                                     const torch::Tensor& ref_label,
                                     const torch::Tensor& mask) {
  const auto probs = F::softmax(logits, F::SoftmaxFuncOptions(1));
  const auto one_hot = F::one_hot(ref_label, logits.size(1)).to(probs.dtype());
  const auto pos = (probs * one_hot).sum(1);
  const auto neg = (probs * (1.0 - one_hot)).sum(1);
  // Two forms of the same term, as sau.py, for numerical robustness.
  const auto terms = -torch::log(1e-6 + neg.clamp_max(0.999)) -
                     torch::log(1.0 + 1e-6 - pos.clamp_min(0.001));
  return (terms * mask.to(terms.dtype())).sum() / 2.0 / logits.size(0);
}

SharedPgdResult shared_pgd(ResNet18& model, ResNet18& ref, const torch::Tensor& x,
                           const torch::Tensor& y, const Normalization& n,
                           const SauOptions& o) {
  torch::Tensor base, base_ref;
  {
    torch::NoGradGuard no_grad;
    const auto xn = normalize(x, n);
    base = model->forward(xn).argmax(1);
    base_ref = ref->forward(xn).argmax(1);
  }
  const double batch = static_cast<double>(x.size(0));
  SharedPgdResult out;
  out.delta = torch::full_like(x, o.eps);  // sau.py's init_type 'max'
  for (int s = 0; s < o.pgd_steps; ++s) {
    auto delta = out.delta.detach().requires_grad_(true);
    const auto xp = normalize(x + delta, n);
    const auto logits = model->forward(xp);
    const auto logits_ref = ref->forward(xp);
    const auto pred = logits.detach().argmax(1);
    const auto pred_ref = logits_ref.detach().argmax(1);
    const auto hit = pred.ne(base).logical_not().to(logits.dtype());
    const auto hit_ref = pred_ref.ne(base_ref).logical_not().to(logits.dtype());
    const auto shared = shared_mask(pred, pred_ref, base, base_ref);
    const auto ce =
        F::cross_entropy(logits, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    const auto ce_ref = F::cross_entropy(
        logits_ref, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    const auto loss_adv = -((ce * hit).sum() + (ce_ref * hit_ref).sum()) / 2.0 / batch;
    const auto loss_share =
        (js_divergence(logits, logits_ref) * shared.logical_not().to(logits.dtype()))
            .sum() /
        batch;
    const auto loss = o.beta1 * loss_adv + o.beta2 * loss_share;
    const auto grad = torch::autograd::grad({loss}, {delta})[0];
    out.delta = delta.detach() - o.pgd_lr * grad.sign();
    project_linf(out.delta, o.eps);
    out.steps = s + 1;
    out.shared = shared.sum().item<int64_t>();
    if (out.shared == x.size(0)) break;  // sau.py's early stop
  }
  return out;
}

Result<nlohmann::json> Sau::purify(ResNet18& model, const CleanSplit& split, double,
                                   const DefenseContext& ctx) {
  const auto start = Clock::now();
  const Dataset& data = split.tune;
  if (data.size() == 0) return Status::InvalidArgument("no clean images to unlearn on");
  auto ref = clone_model(model);
  ref->to(ctx.device);
  ref->eval();
  for (auto& p : ref->parameters()) p.set_requires_grad(false);
  model->eval();  // sau.py's default: BatchNorm statistics stay frozen
  torch::optim::Adam adam(model->parameters(),
                          torch::optim::AdamOptions(options_.lr).betas({0.9, 0.999}));
  auto gen = at::detail::createCPUGenerator(ctx.seed);
  const auto images = data.images.to(ctx.device);
  const auto labels = data.labels.to(ctx.device);
  nlohmann::json epochs = nlohmann::json::array();
  int64_t steps = 0;
  for (int e = 1; e <= options_.epochs; ++e) {
    EpochCounts counts;
    const auto order = torch::randperm(data.size(), gen, torch::kLong).to(ctx.device);
    for (int64_t at = 0; at < data.size(); at += options_.batch_size) {
      const auto idx =
          order.narrow(0, at, std::min(options_.batch_size, data.size() - at));
      const auto x = to_unit_float(images.index_select(0, idx), ctx.device);
      const auto y = labels.index_select(0, idx);
      const auto pgd = shared_pgd(model, ref, x, y, ctx.normalization, options_);
      counts.pgd_steps += pgd.steps;
      unlearn_step(model, ref, adam, x, y, pgd.delta, ctx.normalization, options_,
                   counts);
      ++steps;
    }
    ctx.say(epoch_line(e, options_.epochs, counts));
    epochs.push_back({{"epoch", e},
                      {"loss", counts.loss_sum / std::max<int64_t>(counts.batches, 1)},
                      {"shared_percent", counts.share(counts.shared)},
                      {"reference_fooled_percent", counts.share(counts.ref_miss)}});
  }
  model->eval();
  nlohmann::json report{{"epochs", options_.epochs},
                        {"steps", steps},
                        {"pruned", nlohmann::json::object()},
                        {"seconds", {{"unlearn", seconds_since(start)}}}};
  if (!epochs.empty()) {
    report["first_epoch"] = epochs.front();
    report["last_epoch"] = epochs.back();
  }
  return report;
}

}  // namespace fedvar::plugins
