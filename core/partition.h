// Partitioning a data set among federated clients, deterministic by seed.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace fedvar {

// Each client's indices into the partitioned set (0..n-1), disjoint, covering
// all of it; each client's list is sorted ascending.
using Partition = std::vector<std::vector<int64_t>>;

// Shuffles 0..n-1 and deals it into `clients` shards whose sizes differ by at
// most 1. kInvalidArgument unless 1 <= clients <= n. Deterministic by seed.
Result<Partition> partition_iid(int64_t n, int clients, uint64_t seed);

// Label skew (Hsu et al. 2019, as NIID-Bench does it): each class is split
// among clients by shares ~ Dirichlet(beta); small beta = strong skew. Every
// client gets >= min(10, n/clients) samples. `labels`: 1-D non-negative ints.
// kInvalidArgument on bad labels, beta <= 0 or clients outside 1..n.
Result<Partition> partition_dirichlet(const torch::Tensor& labels, int clients,
                                      double beta, uint64_t seed);

// The partition a spec names: "iid" or "dirichlet:BETA", of a set with
// these `labels`. kInvalidArgument for another spec, as above otherwise.
Result<Partition> partition_by_spec(const std::string& spec, const torch::Tensor& labels,
                                    int clients, uint64_t seed);

}  // namespace fedvar
