#include "aggregator/update_filters.h"

#include <torch/torch.h>

#include <cmath>
#include <map>

#include "aggregator/flat_state.h"
#include "aggregator/hdbscan.h"
#include "aggregator/robust_rules.h"
#include "core/model_io.h"
#include "core/trainer.h"
#include "plugins/option_table.h"

namespace fedvar::aggregator {
namespace {

using plugins::OptionTable;

// Clips the rows of the updates still in the round (weight > 0) to `bound`
// and writes them back; a verdict per clipped update.
Result<std::vector<Verdict>> clip_updates(const std::string& rule,
                                          std::vector<ClientUpdate>& updates,
                                          const torch::Tensor& rows, double bound,
                                          const StateDict& global) {
  std::vector<int64_t> kept;
  for (size_t i = 0; i < updates.size(); ++i) {
    if (updates[i].weight > 0) kept.push_back(static_cast<int64_t>(i));
  }
  if (kept.empty()) return std::vector<Verdict>();
  const bool all = kept.size() == updates.size();
  const torch::Tensor mine = all ? rows : rows.index_select(0, torch::tensor(kept));
  FEDVAR_ASSIGN_OR_RETURN(auto clipped, clip_to_norm(mine, bound));
  std::vector<ClientUpdate> subset;
  for (int64_t k : kept) subset.push_back(std::move(updates[static_cast<size_t>(k)]));
  const Status written = set_deltas(subset, clipped.clipped, global);
  for (size_t j = 0; j < kept.size(); ++j) {
    updates[static_cast<size_t>(kept[j])] = std::move(subset[j]);
  }
  FEDVAR_RETURN_IF_ERROR(written);
  std::vector<Verdict> verdicts;
  for (size_t j = 0; j < kept.size(); ++j) {
    const double scale = clipped.scale[static_cast<int64_t>(j)].item<double>();
    const auto& u = updates[static_cast<size_t>(kept[j])];
    if (scale < 1) {
      verdicts.push_back({rule, u.client_id, "clipped",
                          "delta norm scaled by " + std::to_string(scale) + " to " +
                              std::to_string(bound),
                          u.weight});
    }
  }
  return verdicts;
}

struct NormClipOptions {
  double bound = 0;  // required
};

class NormClip : public UpdateFilter {
 public:
  explicit NormClip(NormClipOptions o) : o_(o) {}
  std::string name() const override { return "norm-clip"; }
  Result<std::vector<Verdict>> filter(std::vector<ClientUpdate>& updates,
                                      const RoundContext& ctx) override {
    FEDVAR_ASSIGN_OR_RETURN(auto rows, stack_deltas(updates, *ctx.global));
    return clip_updates(name(), updates, rows, o_.bound, *ctx.global);
  }

 private:
  NormClipOptions o_;
};

struct FlameOptions {
  double lambda = 0.001;  // noise std as a share of the median delta norm
};

class Flame : public UpdateFilter {
 public:
  explicit Flame(FlameOptions o) : o_(o) {}
  std::string name() const override { return "flame"; }
  Result<std::vector<Verdict>> filter(std::vector<ClientUpdate>& updates,
                                      const RoundContext& ctx) override;
  Status after_aggregation(StateDict& global, const RoundContext& ctx) override;

 private:
  FlameOptions o_;
  double median_norm_ = 0;  // of the last filtered round
};

// The most frequent non-noise label, or -1.
int majority_label(const std::vector<int>& labels) {
  std::map<int, int> counts;
  for (int l : labels)
    if (l >= 0) ++counts[l];
  int best = -1, most = 0;
  for (const auto& [label, count] : counts) {
    if (count > most) best = label, most = count;
  }
  return best;
}

Result<std::vector<Verdict>> Flame::filter(std::vector<ClientUpdate>& updates,
                                           const RoundContext& ctx) {
  FEDVAR_ASSIGN_OR_RETURN(auto rows, stack_deltas(updates, *ctx.global));
  const int n = static_cast<int>(rows.size(0));
  FEDVAR_ASSIGN_OR_RETURN(auto distances, cosine_distances(rows));
  auto flat = distances.contiguous();
  std::vector<double> matrix(flat.data_ptr<double>(), flat.data_ptr<double>() + n * n);
  // min_samples 2 here is the hdbscan library's min_samples=1 (hdbscan.h).
  FEDVAR_ASSIGN_OR_RETURN(auto labels, hdbscan(matrix, n, {n / 2 + 1, 2, true}));
  const int majority = majority_label(labels);
  median_norm_ = rows.norm(2, /*dim=*/1).median().item<double>();
  std::vector<Verdict> verdicts;
  for (int i = 0; i < n; ++i) {
    if (labels[static_cast<size_t>(i)] == majority && majority >= 0) continue;
    updates[static_cast<size_t>(i)].weight = 0;
    verdicts.push_back({name(), updates[static_cast<size_t>(i)].client_id, "excluded",
                        "outside the majority cluster of cosine distances", 0.0});
  }
  if (median_norm_ <= 0) return verdicts;
  FEDVAR_ASSIGN_OR_RETURN(auto clipped,
                          clip_updates(name(), updates, rows, median_norm_, *ctx.global));
  verdicts.insert(verdicts.end(), clipped.begin(), clipped.end());
  return verdicts;
}

Status Flame::after_aggregation(StateDict& global, const RoundContext& ctx) {
  const double std = o_.lambda * median_norm_;
  if (std <= 0) return Status::Ok();
  uint64_t seed = ctx.seed;
  for (auto& [name, t] : global) {
    if (!at::isFloatingType(t.scalar_type())) continue;
    if (is_buffer_name(name)) continue;  // BatchNorm statistics stay as averaged
    FEDVAR_ASSIGN_OR_RETURN(t, gaussian_noise_like(t, std, seed++));
  }
  return Status::Ok();
}

// FLTrust's server update: the global model trained on the server's clean
// set with the round's settings, as a delta.
Result<torch::Tensor> server_delta(const RoundContext& ctx,
                                   const plugins::DefenseContext& server) {
  TensorFile file{*ctx.global, {}};
  FEDVAR_ASSIGN_OR_RETURN(auto arch, infer_resnet_options(file));
  ResNet18 model(arch);
  FEDVAR_RETURN_IF_ERROR(load_resnet_state(model, file));
  TrainOptions opts;
  opts.epochs = static_cast<int>(ctx.training->epochs);
  opts.lr = ctx.training->lr;
  opts.momentum = ctx.training->momentum;
  opts.weight_decay = ctx.training->weight_decay;
  opts.batch_size = ctx.training->batch_size;
  opts.seed = ctx.seed;
  opts.normalization = server.normalization;
  opts.device = server.device;
  FEDVAR_RETURN_IF_ERROR(train_model(model, server.clean, opts).status());
  model->to(torch::kCPU);
  ClientUpdate trained{"server", resnet_state(model).tensors, 1, 1.0};
  FEDVAR_ASSIGN_OR_RETURN(auto rows, stack_deltas({trained}, *ctx.global));
  return rows[0];
}

class FlTrust : public UpdateFilter {
 public:
  explicit FlTrust(plugins::DefenseContext server) : server_(std::move(server)) {}
  std::string name() const override { return "fltrust"; }
  Result<std::vector<Verdict>> filter(std::vector<ClientUpdate>& updates,
                                      const RoundContext& ctx) override {
    FEDVAR_ASSIGN_OR_RETURN(auto reference, server_delta(ctx, server_));
    FEDVAR_ASSIGN_OR_RETURN(auto rows, stack_deltas(updates, *ctx.global));
    FEDVAR_ASSIGN_OR_RETURN(auto scores, fltrust_scores(rows, reference));
    auto rescaled = rows * scores.scale.unsqueeze(1).to(rows.scalar_type());
    FEDVAR_RETURN_IF_ERROR(set_deltas(updates, rescaled, *ctx.global));
    std::vector<Verdict> verdicts;
    for (size_t i = 0; i < updates.size(); ++i) {
      const double trust = scores.trust[static_cast<int64_t>(i)].item<double>();
      // Weighted by trust alone: the weight factor undoes the sample count.
      updates[i].weight = trust / static_cast<double>(updates[i].num_samples);
      verdicts.push_back({name(), updates[i].client_id,
                          trust > 0 ? "reweighted" : "excluded",
                          "trust " + std::to_string(trust), updates[i].weight});
    }
    return verdicts;
  }

 private:
  plugins::DefenseContext server_;
};

}  // namespace

std::vector<std::string> update_filter_names() {
  return {"norm-clip", "flame", "fltrust"};
}

Result<std::unique_ptr<UpdateFilter>> make_update_filter(
    const std::string& spec, const plugins::DefenseContext& server) {
  const auto [name, text] = plugins::split_spec(spec);
  if (name == "norm-clip") {
    using O = NormClipOptions;
    static const auto table =
        OptionTable<O>(name)
            .real("bound", &O::bound, 0.0, 1e12, "L2 norm bound of an update's delta")
            .check([](const O& o) {
              return o.bound > 0 ? Status::Ok()
                                 : Status::InvalidArgument(
                                       "norm-clip: give bound=B, the L2 norm bound of an "
                                       "update's delta (B > 0)");
            });
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(text));
    return std::unique_ptr<UpdateFilter>(new NormClip(o));
  }
  if (name == "flame") {
    using O = FlameOptions;
    static const auto table = OptionTable<O>(name).real(
        "lambda", &O::lambda, 0.0, 1e3, "noise std as a share of the median delta norm");
    FEDVAR_ASSIGN_OR_RETURN(auto o, table.parse(text));
    return std::unique_ptr<UpdateFilter>(new Flame(o));
  }
  if (name == "fltrust") {
    FEDVAR_ASSIGN_OR_RETURN(auto none, plugins::parse_options(text));
    if (!none.empty()) return Status::InvalidArgument("fltrust takes no options");
    if (server.clean.size() == 0) {
      return Status::InvalidArgument("fltrust needs the server's clean set");
    }
    return std::unique_ptr<UpdateFilter>(new FlTrust(server));
  }
  std::string known;
  for (const auto& n : update_filter_names()) known += (known.empty() ? "" : ", ") + n;
  return Status::InvalidArgument("unknown before-aggregation rule '" + name +
                                 "' (known: " + known + ")");
}

}  // namespace fedvar::aggregator
