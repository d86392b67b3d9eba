// HDBSCAN* (Campello, Moulavi & Sander, PAKDD 2013) over a precomputed distance
// matrix. FLAME (Nguyen et al., USENIX Security 2022) clusters a round's client
// updates by pairwise cosine distance and keeps the majority cluster; Debian 12
// packages no HDBSCAN library, so this is a small dense O(n^2) one (Prim's MST on
// the mutual-reachability graph), for n up to a few hundred. Plain std::vector, no
// libtorch, no sockets. Details follow McInnes et al.'s hdbscan library (EOM
// selection, cluster_selection_epsilon = 0); each run is deterministic, ties too:
//  - core distance: the k-th smallest entry of a row, the 0 self-distance counted
//    first (the library's tree paths and sklearn; its precomputed path takes k+1);
//  - a selected root (allow_single_cluster) labels only the points that outlast
//    its last split or collapse, as the library does, so that points peeling off
//    the majority early (FLAME's outliers) stay -1;
//  - departure: n < min_cluster_size gives all noise. Zero distances give lambda =
//    inf without NaN; n identical points are one cluster with allow_single_cluster
//    and all noise without it.
#pragma once

#include <vector>

#include "core/status.h"

namespace fedvar::aggregator {

struct HdbscanOptions {
  // Smallest cluster, >= 2; smaller groups fall out of their parent as noise.
  // FLAME uses n/2 + 1, so that only a majority can form a cluster.
  int min_cluster_size = 5;
  // k of the core distance (density smoothing); 0 means min_cluster_size, as the
  // hdbscan library does. Values above n are clamped to n.
  int min_samples = 0;
  // Lets the root (all points) be selected, so that one majority cluster can win
  // (FLAME: true). Off, the result always has 0 or >= 2 clusters.
  bool allow_single_cluster = false;
};

// Labels 0..k-1 per point (in condensed-tree order), -1 for noise, from an n x n
// row-major distance matrix: finite, >= 0, zero diagonal, symmetric, each up to 1e-6
// rounding. Else, or min_cluster_size < 2 or min_samples < 0: kInvalidArgument.
Result<std::vector<int>> hdbscan(const std::vector<double>& distances, int n,
                                 const HdbscanOptions& options);

}  // namespace fedvar::aggregator
