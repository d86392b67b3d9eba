#include "core/partition.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

namespace fedvar {

namespace {

// NIID-Bench (Li et al. 2022) re-draws until every client has this many
// samples (or n / clients when that is smaller).
constexpr int64_t kMinClientSamples = 10;
// Re-draws before the smallest clients are topped up from the largest one.
constexpr int kMaxDraws = 100;
constexpr int64_t kMaxClasses = int64_t{1} << 20;

// Uniform integer in [0, bound) without modulo bias. Unlike
// std::uniform_int_distribution, its output is fixed by the standard engine
// alone, so partitions do not depend on the standard library.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (uint64_t{0} - bound) % bound;  // 2^64 mod bound
  while (true) {
    const uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

void shuffle(std::vector<int64_t>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    std::swap(v[i - 1], v[uniform_below(rng, i)]);
  }
}

Status validate_counts(int64_t n, int clients) {
  if (clients < 1) {
    return Status::InvalidArgument("clients must be >= 1, got " +
                                   std::to_string(clients));
  }
  if (n < clients) {
    return Status::InvalidArgument("cannot split " + std::to_string(n) +
                                   " samples among " + std::to_string(clients) +
                                   " clients");
  }
  return Status::Ok();
}

// Client shares of one class: Dirichlet(beta) via normalised Gamma(beta, 1)
// draws; as in NIID-Bench, clients already holding n / clients samples get
// nothing more, which keeps client sizes from drifting far apart.
std::vector<double> draw_shares(const Partition& parts, int64_t n, double beta,
                                std::mt19937_64& rng) {
  const size_t clients = parts.size();
  std::gamma_distribution<double> gamma(beta, 1.0);
  std::vector<double> share(clients);
  double raw_sum = 0;
  for (double& s : share) raw_sum += (s = gamma(rng));
  if (raw_sum <= 0) {  // every draw underflowed (tiny beta): the limit is one-hot
    share.assign(clients, 0.0);
    share[uniform_below(rng, clients)] = 1.0;
  }
  std::vector<double> masked = share;
  double sum = 0;
  for (size_t c = 0; c < clients; ++c) {
    if (static_cast<double>(parts[c].size()) * clients >= static_cast<double>(n)) {
      masked[c] = 0;
    }
    sum += masked[c];
  }
  if (sum <= 0) return share;  // unreachable while samples remain; be safe
  for (double& s : masked) s /= sum;
  return masked;
}

// One NIID-Bench style draw: each class's shuffled indices are cut at the
// cumulative shares of the clients.
Partition draw_dirichlet(std::vector<std::vector<int64_t>> by_class, int clients,
                         int64_t n, double beta, std::mt19937_64& rng) {
  Partition parts(clients);
  for (std::vector<int64_t>& idx : by_class) {
    shuffle(idx, rng);
    std::vector<double> share = draw_shares(parts, n, beta, rng);
    const auto count = static_cast<int64_t>(idx.size());
    double cumulative = 0;
    int64_t begin = 0;
    for (int c = 0; c < clients; ++c) {
      cumulative += share[c];
      int64_t end = static_cast<int64_t>(cumulative * static_cast<double>(count));
      end = c + 1 == clients ? count : std::clamp<int64_t>(end, begin, count);
      parts[c].insert(parts[c].end(), idx.begin() + begin, idx.begin() + end);
      begin = end;
    }
  }
  return parts;
}

int64_t smallest(const Partition& parts) {
  int64_t out = INT64_MAX;
  for (const auto& p : parts) out = std::min<int64_t>(out, p.size());
  return out;
}

// Moves samples from the largest client to each client below `minimum`.
void top_up(Partition& parts, int64_t minimum) {
  for (auto& small : parts) {
    while (static_cast<int64_t>(small.size()) < minimum) {
      auto largest = std::max_element(
          parts.begin(), parts.end(),
          [](const auto& a, const auto& b) { return a.size() < b.size(); });
      small.push_back(largest->back());
      largest->pop_back();
    }
  }
}

// Labels as a vector of non-negative class ids, or why they are unusable.
Result<std::vector<int64_t>> label_vector(const torch::Tensor& labels) {
  if (!labels.defined() || labels.dim() != 1) {
    return Status::InvalidArgument("labels must be a 1-D tensor");
  }
  if (!c10::isIntegralType(labels.scalar_type(), /*includeBool=*/false)) {
    return Status::InvalidArgument("labels must have an integer dtype");
  }
  try {
    const torch::Tensor l = labels.to(torch::kCPU, torch::kLong).contiguous();
    std::vector<int64_t> out(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
    if (std::any_of(out.begin(), out.end(), [](int64_t v) { return v < 0; })) {
      return Status::InvalidArgument("labels must be non-negative");
    }
    return out;
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("reading labels: ") + e.what_without_backtrace());
  }
}

}  // namespace

Result<Partition> partition_iid(int64_t n, int clients, uint64_t seed) {
  FEDVAR_RETURN_IF_ERROR(validate_counts(n, clients));
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  shuffle(order, rng);
  Partition parts(clients);
  int64_t begin = 0;
  for (int c = 0; c < clients; ++c) {
    const int64_t size = n / clients + (c < n % clients ? 1 : 0);
    parts[c].assign(order.begin() + begin, order.begin() + begin + size);
    std::sort(parts[c].begin(), parts[c].end());
    begin += size;
  }
  return parts;
}

Result<Partition> partition_dirichlet(const torch::Tensor& labels, int clients,
                                      double beta, uint64_t seed) {
  if (!(beta > 0) || !std::isfinite(beta)) {
    return Status::InvalidArgument("beta must be positive and finite, got " +
                                   std::to_string(beta));
  }
  FEDVAR_ASSIGN_OR_RETURN(std::vector<int64_t> y, label_vector(labels));
  const auto n = static_cast<int64_t>(y.size());
  FEDVAR_RETURN_IF_ERROR(validate_counts(n, clients));
  const int64_t classes = *std::max_element(y.begin(), y.end()) + 1;
  if (classes > kMaxClasses) {
    return Status::InvalidArgument("label " + std::to_string(classes - 1) +
                                   " is too large for a class id");
  }
  std::vector<std::vector<int64_t>> by_class(classes);
  for (int64_t i = 0; i < n; ++i) by_class[y[i]].push_back(i);

  const int64_t minimum = std::min<int64_t>(kMinClientSamples, n / clients);
  std::mt19937_64 rng(seed);
  Partition parts;
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    parts = draw_dirichlet(by_class, clients, n, beta, rng);
    if (smallest(parts) >= minimum) break;
  }
  top_up(parts, minimum);
  for (auto& p : parts) std::sort(p.begin(), p.end());
  return parts;
}

Result<Partition> partition_by_spec(const std::string& spec, const torch::Tensor& labels,
                                    int clients, uint64_t seed) {
  if (spec == "iid") return partition_iid(labels.size(0), clients, seed);
  if (spec.rfind("dirichlet:", 0) == 0) {
    char* end = nullptr;
    const double beta = std::strtod(spec.c_str() + 10, &end);
    if (end != spec.c_str() + 10 && *end == '\0') {
      return partition_dirichlet(labels, clients, beta, seed);
    }
  }
  return Status::InvalidArgument("--partition must be iid or dirichlet:BETA, got '" + spec +
                                 "'");
}

}  // namespace fedvar
