#include "aggregator/robust_rules.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

#include "aggregator/column_stats.h"
#include "core/torch_compat.h"

namespace fedvar::aggregator {
namespace {

// The per-coordinate sorts and the float64 conversions work on column chunks
// of about this many elements (128 MiB as float64, plus int64 sort indices),
// so that their temporaries stay bounded when d is 11.2 M and n is 50.
constexpr int64_t kChunkElements = int64_t{1} << 24;

Status check_rows(const torch::Tensor& x, const std::string& name) {
  if (!x.defined()) return Status::InvalidArgument(name + " is undefined");
  if (x.dim() != 2) {
    return Status::InvalidArgument(name + " must be [n, d], got " +
                                   std::to_string(x.dim()) + " dimensions");
  }
  if (x.size(0) == 0 || x.size(1) == 0)
    return Status::InvalidArgument(name + " is empty");
  const auto dtype = x.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64) {
    return Status::InvalidArgument(name + " must be float32 or float64");
  }
  return Status::Ok();
}

// Calls fn(start, length) for consecutive column ranges covering 0..d.
template <typename Fn>
void for_each_column_chunk(const torch::Tensor& x, Fn fn) {
  const int64_t d = x.size(1);
  const int64_t step = std::max<int64_t>(1, kChunkElements / x.size(0));
  for (int64_t start = 0; start < d; start += step) fn(start, std::min(step, d - start));
}

// The median along dim 0 of values sorted along dim 0, computed as numpy does
// it: the middle value, or (lower + upper) / 2 in the input's dtype.
torch::Tensor median_of_sorted(const torch::Tensor& sorted) {
  const int64_t n = sorted.size(0);
  if (n % 2 == 1) return sorted[n / 2];
  return (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

// The Gram matrix of the rows, [n, n] float64, summed over column chunks.
// With `centred` each column's median is subtracted first: distances
// do not change, and the cancellation in |a|^2 + |b|^2 - 2<a, b> then scales
// with the distance of the rows from the majority, not with their size (full
// models rather than deltas) nor with an outlier's (a mean would follow it).
torch::Tensor gram(const torch::Tensor& x, bool centred) {
  const int64_t n = x.size(0);
  torch::Tensor g = torch::zeros({n, n}, x.options().dtype(torch::kFloat64));
  for_each_column_chunk(x, [&](int64_t start, int64_t length) {
    torch::Tensor c = x.narrow(1, start, length).to(torch::kFloat64);
    if (centred) c = c - column_median(c).unsqueeze(0);
    g.addmm_(c, c.t());
  });
  return g;
}

// Precision: the distances come from the float64 Gram matrix of the rows
// centred on the coordinate-wise median m, so D_ij carries an absolute error of
// about 1e-16 * sqrt(d) (worst case 1e-16 * d) times |x_i - m|^2 + |x_j - m|^2.
// For d = 11.2 M that beats float32 direct differences (Flower's, relative
// 1e-7) unless rows i and j are some 400 times closer to each other than to m;
// distances below the error are noise, and negatives among them become 0.
torch::Tensor sq_distances(const torch::Tensor& x) {
  const torch::Tensor g = gram(x, /*centred=*/true);
  const torch::Tensor diag = g.diagonal();
  torch::Tensor dist = (diag.unsqueeze(1) + diag.unsqueeze(0) - 2 * g).clamp_min(0);
  dist = (dist + dist.t()) / 2;
  dist.fill_diagonal_(0);
  return dist;
}

// Krum scores of the rows of a squared-distance matrix: the sum of each row's
// `neighbours` smallest distances to the other rows ([r], float64).
torch::Tensor krum_scores(const torch::Tensor& dist, int64_t neighbours) {
  torch::Tensor masked = dist.clone();
  masked.fill_diagonal_(std::numeric_limits<double>::infinity());
  auto smallest = std::get<0>(masked.topk(neighbours, /*dim=*/1, /*largest=*/false));
  return smallest.sum(/*dim=*/1);
}

// Row indices by increasing score; equal scores keep the lower index first.
std::vector<int64_t> ascending_order(const torch::Tensor& scores) {
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* p = s.data_ptr<double>();
  std::vector<int64_t> order(static_cast<size_t>(s.numel()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [p](int64_t a, int64_t b) { return p[a] < p[b]; });
  return order;
}

// The squared L2 norm of each row, [n] float64.
torch::Tensor row_sq_norms(const torch::Tensor& x) {
  torch::Tensor sq = torch::zeros({x.size(0)}, x.options().dtype(torch::kFloat64));
  for_each_column_chunk(x, [&](int64_t start, int64_t length) {
    sq += x.narrow(1, start, length).to(torch::kFloat64).square().sum(/*dim=*/1);
  });
  return sq;
}

// sum_i coeff_i * row_i ([d], x's dtype), accumulated in float64.
torch::Tensor combine_rows(const torch::Tensor& x, const torch::Tensor& coeff) {
  torch::Tensor out = torch::empty({x.size(1)}, x.options());
  const torch::Tensor c = coeff.to(x.device(), torch::kFloat64).unsqueeze(0);
  for_each_column_chunk(x, [&](int64_t start, int64_t length) {
    const torch::Tensor part = x.narrow(1, start, length).to(torch::kFloat64);
    out.narrow(0, start, length).copy_(c.mm(part).squeeze(0));
  });
  return out;
}

// Bulyan's selection: repeated Krum with the same f over the remaining rows.
// Once r rows remain the paper's n - f - 2 neighbours becomes r - f - 2, which
// drops below 1 in the last picks (r reaches 2f + 1); like Flower's Krum we
// then use max(1, r - f - 2), so a pick still prefers a row near another one.
// With 1 neighbour the two closest rows tie, and the lower index wins.
std::vector<int64_t> repeated_krum(const torch::Tensor& dist, int64_t f, int64_t theta) {
  std::vector<int64_t> remaining(static_cast<size_t>(dist.size(0)));
  std::iota(remaining.begin(), remaining.end(), 0);
  std::vector<int64_t> selected;
  while (static_cast<int64_t>(selected.size()) < theta) {
    const int64_t r = static_cast<int64_t>(remaining.size());
    if (r == 1) {  // only with f = 0, where every row is selected anyway
      selected.push_back(remaining[0]);
      break;
    }
    const torch::Tensor idx =
        torch::tensor(remaining, torch::dtype(torch::kInt64).device(dist.device()));
    const torch::Tensor sub = dist.index_select(0, idx).index_select(1, idx);
    const int64_t neighbours = std::max<int64_t>(1, r - f - 2);
    const int64_t pick = ascending_order(krum_scores(sub, neighbours))[0];
    selected.push_back(remaining[static_cast<size_t>(pick)]);
    remaining.erase(remaining.begin() + pick);
  }
  return selected;
}

// Per column of `rows` ([theta, length]): the mean of the `beta` values
// nearest the column's median; equally near values go lower value first.
// (The stable flag must be an optional<bool>: a plain `true` binds to
// sort(dim, descending) and sorts along dim 1.)
torch::Tensor mean_nearest_median(const torch::Tensor& rows, int64_t beta) {
  const torch::Tensor sorted = std::get<0>(rows.sort(/*dim=*/0));
  const torch::Tensor gap = (sorted - median_of_sorted(sorted)).abs();
  const torch::Tensor nearest =
      std::get<1>(gap.sort(TorchOptional<bool>(true), /*dim=*/0)).narrow(0, 0, beta);
  return sorted.gather(0, nearest).to(torch::kFloat64).mean(/*dim=*/0);
}

}  // namespace

Result<torch::Tensor> coordinate_median(const torch::Tensor& updates) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "coordinate_median: updates"));
  try {
    torch::NoGradGuard no_grad;
    return column_median(updates.to(torch::kCPU)).to(updates.device());
  } catch (const std::exception& e) {
    return status_from_exception("coordinate_median", e);
  }
}

Result<torch::Tensor> trimmed_mean(const torch::Tensor& updates, double beta) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "trimmed_mean: updates"));
  if (!(beta >= 0 && beta < 0.5)) {
    return Status::InvalidArgument("trimmed_mean: beta must be in [0, 0.5), got " +
                                   std::to_string(beta));
  }
  const int64_t n = updates.size(0);
  // int(beta * n) as scipy and Flower compute it; beta < 0.5 keeps >= 1 value.
  const auto cut = static_cast<int64_t>(beta * static_cast<double>(n));
  const int64_t kept = n - 2 * cut;
  if (kept < 1) return Status::InvalidArgument("trimmed_mean: beta trims every value");
  try {
    torch::NoGradGuard no_grad;
    return column_trimmed_mean(updates.to(torch::kCPU), cut).to(updates.device());
  } catch (const std::exception& e) {
    return status_from_exception("trimmed_mean", e);
  }
}

Result<torch::Tensor> pairwise_sq_distances(const torch::Tensor& updates) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "pairwise_sq_distances: updates"));
  try {
    torch::NoGradGuard no_grad;
    return sq_distances(updates);
  } catch (const std::exception& e) {
    return status_from_exception("pairwise_sq_distances", e);
  }
}

Result<std::vector<int64_t>> krum_select(const torch::Tensor& updates, int64_t f,
                                         int64_t m) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "krum_select: updates"));
  const int64_t n = updates.size(0);
  if (f < 0 || f > n || n <= 2 * f + 2) {
    return Status::InvalidArgument("krum_select: Krum needs n > 2f + 2 rows, got n = " +
                                   std::to_string(n) + ", f = " + std::to_string(f));
  }
  if (m < 1 || m > n) {
    return Status::InvalidArgument("krum_select: m must be in 1.." + std::to_string(n) +
                                   ", got " + std::to_string(m));
  }
  try {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> order =
        ascending_order(krum_scores(sq_distances(updates), n - f - 2));
    order.resize(static_cast<size_t>(m));
    return order;
  } catch (const std::exception& e) {
    return status_from_exception("krum_select", e);
  }
}

Result<torch::Tensor> bulyan(const torch::Tensor& updates, int64_t f) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "bulyan: updates"));
  const int64_t n = updates.size(0);
  if (f < 0 || f > n || n < 4 * f + 3) {
    return Status::InvalidArgument("bulyan: Bulyan needs n >= 4f + 3 rows, got n = " +
                                   std::to_string(n) + ", f = " + std::to_string(f));
  }
  const int64_t theta = n - 2 * f;
  const int64_t beta = theta - 2 * f;
  try {
    torch::NoGradGuard no_grad;
    const std::vector<int64_t> selected = repeated_krum(sq_distances(updates), f, theta);
    const torch::Tensor idx =
        torch::tensor(selected, torch::dtype(torch::kInt64).device(updates.device()));
    torch::Tensor out = torch::empty({updates.size(1)}, updates.options());
    for_each_column_chunk(updates, [&](int64_t start, int64_t length) {
      const torch::Tensor rows = updates.narrow(1, start, length).index_select(0, idx);
      out.narrow(0, start, length).copy_(mean_nearest_median(rows, beta));
    });
    return out;
  } catch (const std::exception& e) {
    return status_from_exception("bulyan", e);
  }
}

Result<ClippedRows> clip_to_norm(const torch::Tensor& deltas, double bound) {
  FEDVAR_RETURN_IF_ERROR(check_rows(deltas, "clip_to_norm: deltas"));
  if (!(bound > 0)) {
    return Status::InvalidArgument("clip_to_norm: bound must be > 0, got " +
                                   std::to_string(bound));
  }
  try {
    torch::NoGradGuard no_grad;
    // bound / 0 = inf, so a zero row gets scale 1 like any row within bound.
    const torch::Tensor scale = (bound / row_sq_norms(deltas).sqrt()).clamp_max(1.0);
    torch::Tensor clipped = deltas * scale.to(deltas.scalar_type()).unsqueeze(1);
    return ClippedRows{std::move(clipped), scale};
  } catch (const std::exception& e) {
    return status_from_exception("clip_to_norm", e);
  }
}

Result<FlTrustScores> fltrust_scores(const torch::Tensor& deltas,
                                     const torch::Tensor& server_delta) {
  FEDVAR_RETURN_IF_ERROR(check_rows(deltas, "fltrust: deltas"));
  if (!server_delta.defined() || server_delta.dim() != 1 ||
      server_delta.size(0) != deltas.size(1) || !server_delta.is_floating_point()) {
    return Status::InvalidArgument("fltrust: server_delta must be a floating [" +
                                   std::to_string(deltas.size(1)) + "] tensor");
  }
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor s = server_delta.to(deltas.device(), torch::kFloat64);
    torch::Tensor dots = torch::zeros({deltas.size(0)}, s.options());
    for_each_column_chunk(deltas, [&](int64_t start, int64_t length) {
      const torch::Tensor part = deltas.narrow(1, start, length).to(torch::kFloat64);
      dots += part.mv(s.narrow(0, start, length));
    });
    const torch::Tensor norms = row_sq_norms(deltas).sqrt();
    const double s_norm = s.norm().item<double>();
    const torch::Tensor zero = torch::zeros_like(norms);
    const torch::Tensor usable = norms > 0;  // cos of a zero vector: trust 0
    torch::Tensor trust =
        (s_norm > 0) ? torch::where(usable, dots / (norms * s_norm), zero) : zero.clone();
    trust = trust.clamp(0.0, 1.0);  // ReLU; cos can round a hair above 1
    torch::Tensor scale = torch::where(trust > 0, s_norm / norms, zero);
    return FlTrustScores{std::move(trust), std::move(scale)};
  } catch (const std::exception& e) {
    return status_from_exception("fltrust", e);
  }
}

Result<FlTrustResult> fltrust(const torch::Tensor& deltas,
                              const torch::Tensor& server_delta) {
  FEDVAR_ASSIGN_OR_RETURN(auto scores, fltrust_scores(deltas, server_delta));
  try {
    torch::NoGradGuard no_grad;
    const double total = scores.trust.sum().item<double>();
    if (total <= 0) {
      return FlTrustResult{torch::zeros({deltas.size(1)}, deltas.options()),
                           scores.trust};
    }
    const torch::Tensor coeff = scores.trust * scores.scale / total;
    return FlTrustResult{combine_rows(deltas, coeff), scores.trust};
  } catch (const std::exception& e) {
    return status_from_exception("fltrust", e);
  }
}

Result<torch::Tensor> cosine_distances(const torch::Tensor& updates) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "cosine_distances: updates"));
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor g = gram(updates, /*centred=*/false);
    const torch::Tensor norms = g.diagonal().sqrt();
    const torch::Tensor denom = norms.unsqueeze(1) * norms.unsqueeze(0);
    // A zero row has cos 0, hence distance 1, with every other row.
    const torch::Tensor cos = torch::where(denom > 0, g / denom, torch::zeros_like(g));
    torch::Tensor dist = (1 - cos).clamp(0.0, 2.0);
    dist = (dist + dist.t()) / 2;
    dist.fill_diagonal_(0);
    return dist;
  } catch (const std::exception& e) {
    return status_from_exception("cosine_distances", e);
  }
}

Result<torch::Tensor> gaussian_noise_like(const torch::Tensor& v, double std,
                                          uint64_t seed) {
  if (!v.defined() ||
      (v.scalar_type() != torch::kFloat32 && v.scalar_type() != torch::kFloat64)) {
    return Status::InvalidArgument("gaussian_noise_like: v must be float32 or float64");
  }
  if (!(std >= 0) || !std::isfinite(std)) {
    return Status::InvalidArgument(
        "gaussian_noise_like: std must be finite and >= 0, got " + std::to_string(std));
  }
  try {
    torch::NoGradGuard no_grad;
    auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
    const torch::Tensor noise =
        at::normal(0.0, std, v.sizes(), generator, v.options().device(torch::kCPU));
    return v + noise.to(v.device());
  } catch (const std::exception& e) {
    return status_from_exception("gaussian_noise_like", e);
  }
}

Result<torch::Tensor> weighted_mean(const torch::Tensor& updates,
                                    const torch::Tensor& weights) {
  FEDVAR_RETURN_IF_ERROR(check_rows(updates, "weighted_mean: updates"));
  if (!weights.defined() || weights.dim() != 1 || weights.size(0) != updates.size(0) ||
      weights.is_complex() || weights.scalar_type() == torch::kBool) {
    return Status::InvalidArgument("weighted_mean: weights must be a real [" +
                                   std::to_string(updates.size(0)) + "] tensor");
  }
  try {
    torch::NoGradGuard no_grad;
    const torch::Tensor w = weights.to(torch::kCPU, torch::kFloat64);
    const double total = w.sum().item<double>();
    if (!w.isfinite().all().item<bool>() || (w < 0).any().item<bool>() || !(total > 0) ||
        !std::isfinite(total)) {
      return Status::InvalidArgument(
          "weighted_mean: weights must be finite, >= 0 and have a positive sum");
    }
    return combine_rows(updates, w / total);
  } catch (const std::exception& e) {
    return status_from_exception("weighted_mean", e);
  }
}

}  // namespace fedvar::aggregator
