// Robust aggregation rules and update filters that VarDefense is compared
// against, as pure functions over tensors: no sockets, no state. A round's
// client vectors come as one `updates` tensor of shape [n, d] (float32 or
// float64, CPU or CUDA; one flattened model or model delta per row). Results
// keep the input's dtype and device unless a comment says otherwise. Every
// function returns kInvalidArgument for bad parameters (an undefined, empty or
// non-2-D input, an integer dtype, ...) and kInternal for a libtorch failure
// (out of memory, ...); no exception escapes. Inputs must be finite: NaN or
// inf values are not checked (that would cost a pass over n * d values) and
// give unspecified results, so drop non-finite rows before calling.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace fedvar::aggregator {

// Coordinate-wise median (Yin et al., "Byzantine-robust distributed learning:
// towards optimal statistical rates", ICML 2018): [d]. For even n the mean of
// the two middle values, exactly as numpy.median (and Flower's FedMedian).
Result<torch::Tensor> coordinate_median(const torch::Tensor& updates);

// Coordinate-wise trimmed mean (Yin et al., ICML 2018): per coordinate drops
// the floor(beta * n) lowest and as many highest values and averages the rest
// (scipy.stats.trim_mean, Flower's FedTrimmedAvg): [d]. beta in [0, 0.5).
Result<torch::Tensor> trimmed_mean(const torch::Tensor& updates, double beta);

// Squared L2 distances between rows, [n, n] float64 with an exact zero
// diagonal, from the Gram matrix of the centred rows (no [n, n, d] tensor;
// the precision is discussed at the definition).
Result<torch::Tensor> pairwise_sq_distances(const torch::Tensor& updates);

// Krum (Blanchard et al., "Machine learning with adversaries: Byzantine
// tolerant gradient descent", NeurIPS 2017). A row's score is the sum of its
// squared distances to its n - f - 2 nearest other rows; returns the indices
// of the m lowest-scoring rows, lowest first (equal scores: lower index
// first). m = 1 is Krum, m > 1 the selection of Multi-Krum (compose it with
// weighted_mean). kInvalidArgument when f < 0, n <= 2f + 2 (the paper's
// condition; Flower's aggregate_krum instead uses max(1, n - f - 2)
// neighbours and tolerates small n: we refuse) or m is not in 1..n.
Result<std::vector<int64_t>> krum_select(const torch::Tensor& updates, int64_t f,
                                         int64_t m);

// Bulyan (El Mhamdi et al., "The hidden vulnerability of distributed learning
// in Byzantium", ICML 2018): selects theta = n - 2f rows by repeated Krum
// (over r remaining rows with max(1, r - f - 2) neighbours; ties to the lower
// index), then per coordinate averages the beta = theta - 2f selected values
// closest to their median: [d]. kInvalidArgument when f < 0 or n < 4f + 3.
Result<torch::Tensor> bulyan(const torch::Tensor& updates, int64_t f);

// Norm-difference clipping (Sun et al., "Can you really backdoor federated
// learning?", 2019). `clipped` is `deltas` ([n, d]) with every row whose L2
// norm exceeds `bound` scaled down to norm `bound`; `scale` ([n], float64) is
// the factor applied to each row, min(1, bound / norm), 1 for a zero row.
struct ClippedRows {
  torch::Tensor clipped;
  torch::Tensor scale;
};
// kInvalidArgument unless bound > 0 (inf clips nothing).
Result<ClippedRows> clip_to_norm(const torch::Tensor& deltas, double bound);

// FLTrust (Cao et al., "FLTrust: Byzantine-robust federated learning via
// trust bootstrapping", NDSS 2021). trust_i = ReLU(cos(delta_i, server_delta))
// ([n], float64; 0 for a zero delta); scale_i = ||server_delta|| / ||delta_i||
// rescales each delta to the server delta's norm ([n], float64; 0 where trust
// is 0). `server_delta` is the server's own update on its root data set, [d];
// a zero server_delta gives trust 0 to every client.
struct FlTrustScores {
  torch::Tensor trust;
  torch::Tensor scale;
};
Result<FlTrustScores> fltrust_scores(const torch::Tensor& deltas,
                                     const torch::Tensor& server_delta);

// FLTrust's aggregate: sum_i trust_i * scale_i * delta_i / sum_i trust_i ([d]),
// or zeros (the model stays) when every trust is 0.
struct FlTrustResult {
  torch::Tensor aggregate;
  torch::Tensor trust;
};
Result<FlTrustResult> fltrust(const torch::Tensor& deltas,
                              const torch::Tensor& server_delta);

// Cosine distances 1 - cos(row_i, row_j), [n, n] float64 (as used by FLAME's
// clustering, Nguyen et al., USENIX Security 2022). A zero row is at distance
// 1 from every other row; the diagonal is 0.
Result<torch::Tensor> cosine_distances(const torch::Tensor& updates);

// `v` + N(0, std^2) noise, in v's dtype, shape and device; the noise is drawn
// on the CPU from a generator seeded with `seed`, so equal seeds give equal
// noise (FLAME's and CRFL's noising). kInvalidArgument unless v is a floating
// tensor and std is finite and >= 0.
Result<torch::Tensor> gaussian_noise_like(const torch::Tensor& v, double std,
                                          uint64_t seed);

// sum_i weights_i * row_i / sum_i weights_i, computed in float64: [d] (FedAvg,
// and Multi-Krum over krum_select's rows with their sample counts, as Flower's
// aggregate). `weights` is [n], any real dtype, >= 0 with a positive sum.
Result<torch::Tensor> weighted_mean(const torch::Tensor& updates,
                                    const torch::Tensor& weights);

}  // namespace fedvar::aggregator
