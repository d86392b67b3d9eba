#include "aggregator/hdbscan.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>

namespace fedvar::aggregator {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Rounding forgiven in the input, relative to max(1, |d(i,j)|): asymmetry, a
// nonzero diagonal or a negative entry this small (float32 cosine distances) is
// cleaned up; a similarity matrix or a non-symmetric dissimilarity is refused.
constexpr double kTolerance = 1e-6;

// An edge of the minimum spanning tree of the mutual-reachability graph.
struct Edge {
  int a;
  int b;
  double weight;
};

// A row of the single-linkage tree in scipy's format: merge i creates node n + i.
struct Merge {
  int left;
  int right;
  double distance;
  int size;
};

// A row of the condensed tree: `child` (a point < n, or a cluster >= n) leaves
// cluster `parent` at `lambda` = 1 / distance. Cluster n is the root.
struct CondensedRow {
  int parent;
  int child;
  double lambda;
  int child_size;
};

struct CondensedTree {
  std::vector<CondensedRow> rows;
  int num_clusters = 0;  // clusters are n .. n + num_clusters - 1
};

double at(const std::vector<double>& d, int n, int i, int j) {
  return d[static_cast<std::size_t>(i) * n + j];
}

Status validate(const std::vector<double>& d, int n, const HdbscanOptions& options) {
  if (options.min_cluster_size < 2) {
    return Status::InvalidArgument("hdbscan: min_cluster_size must be >= 2, got " +
                                   std::to_string(options.min_cluster_size));
  }
  if (options.min_samples < 0) {
    return Status::InvalidArgument("hdbscan: min_samples must be >= 0, got " +
                                   std::to_string(options.min_samples));
  }
  if (n < 0 || d.size() != static_cast<std::size_t>(n) * static_cast<std::size_t>(n)) {
    return Status::InvalidArgument(
        "hdbscan: expected an n x n matrix with n = " + std::to_string(n) + ", got " +
        std::to_string(d.size()) + " values");
  }
  auto bad = [](const std::string& what, int i, int j) {
    return Status::InvalidArgument("hdbscan: " + what + " at (" + std::to_string(i) +
                                   ", " + std::to_string(j) + ")");
  };
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const double v = at(d, n, i, j);
      if (!std::isfinite(v) || v < -kTolerance) {
        return bad("distance not finite and >= 0", i, j);
      }
      if (i == j && std::fabs(v) > kTolerance) return bad("nonzero diagonal", i, j);
      if (std::fabs(v - at(d, n, j, i)) > kTolerance * std::max(1.0, v)) {
        return bad("matrix not symmetric", i, j);
      }
    }
  }
  return Status::Ok();
}

// The mean of d and its transpose, so that every later step sees one value per
// pair; rounding below 0 and the diagonal become exactly 0.
std::vector<double> cleaned(const std::vector<double>& d, int n) {
  std::vector<double> s(d.size(), 0.0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const double mean = 0.5 * (at(d, n, i, j) + at(d, n, j, i));
      if (i != j) s[static_cast<std::size_t>(i) * n + j] = std::max(0.0, mean);
    }
  }
  return s;
}

// The k-th smallest entry of each row, the point's own 0 counted first (1 <= k <= n).
std::vector<double> core_distances(const std::vector<double>& d, int n, int k) {
  std::vector<double> core(n);
  std::vector<double> row(n);
  for (int i = 0; i < n; ++i) {
    const auto begin = d.begin() + static_cast<std::ptrdiff_t>(i) * n;
    std::copy(begin, begin + n, row.begin());
    std::nth_element(row.begin(), row.begin() + (k - 1), row.end());
    core[i] = row[k - 1];
  }
  return core;
}

// Prim's algorithm on the dense mutual-reachability graph, from point 0; a tie
// goes to the lowest index, then to the earliest tree vertex. Edges sorted by
// weight, stably (so ties keep Prim's order).
std::vector<Edge> mutual_reachability_mst(const std::vector<double>& d,
                                          const std::vector<double>& core, int n) {
  std::vector<bool> in_tree(n, false);
  std::vector<double> best(n, kInf);
  std::vector<int> from(n, 0);
  std::vector<Edge> edges;
  int current = 0;
  in_tree[0] = true;
  for (int step = 1; step < n; ++step) {
    int next = -1;
    for (int j = 0; j < n; ++j) {
      if (in_tree[j]) continue;
      const double mr = std::max({core[current], core[j], at(d, n, current, j)});
      if (mr < best[j]) {
        best[j] = mr;
        from[j] = current;
      }
      if (next < 0 || best[j] < best[next]) next = j;
    }
    edges.push_back({from[next], next, best[next]});
    in_tree[next] = true;
    current = next;
  }
  std::stable_sort(edges.begin(), edges.end(),
                   [](const Edge& x, const Edge& y) { return x.weight < y.weight; });
  return edges;
}

// Kruskal-style merging of the sorted MST edges with a union-find whose roots
// are hierarchy nodes (points 0..n-1, merges n..2n-2).
std::vector<Merge> single_linkage(const std::vector<Edge>& sorted_edges, int n) {
  std::vector<int> parent(2 * n - 1);
  std::vector<int> size(2 * n - 1, 1);
  for (int i = 0; i < 2 * n - 1; ++i) parent[i] = i;
  auto find = [&parent](int x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::vector<Merge> merges;
  for (const Edge& e : sorted_edges) {
    const int node = n + static_cast<int>(merges.size());
    const int left = find(e.a);
    const int right = find(e.b);
    size[node] = size[left] + size[right];
    parent[left] = parent[right] = node;
    merges.push_back({left, right, e.weight, size[node]});
  }
  return merges;
}

// The points (leaves) under hierarchy node `node`.
std::vector<int> points_under(const std::vector<Merge>& merges, int n, int node) {
  std::vector<int> points;
  std::vector<int> stack = {node};
  while (!stack.empty()) {
    const int x = stack.back();
    stack.pop_back();
    if (x < n) {
      points.push_back(x);
    } else {
      stack.push_back(merges[x - n].right);
      stack.push_back(merges[x - n].left);
    }
  }
  return points;
}

// Walks the hierarchy top-down, breadth first: a split into two sides of at least
// min_cluster_size points makes two new clusters; a smaller side falls out as
// points. (Zero-distance merges come first, in Prim order, each adding a single
// point, so a split at lambda = inf never makes clusters.)
CondensedTree condense(const std::vector<Merge>& merges, int n, int min_cluster_size) {
  CondensedTree tree;
  const int root = 2 * n - 2;
  auto size_of = [&](int node) { return node < n ? 1 : merges[node - n].size; };
  std::vector<int> cluster_of(2 * n - 1, -1);
  cluster_of[root] = n;
  int next_cluster = n + 1;
  std::vector<int> queue = {root};  // hierarchy nodes that carry a cluster
  for (std::size_t q = 0; q < queue.size(); ++q) {
    const Merge& m = merges[queue[q] - n];
    const int cluster = cluster_of[queue[q]];
    const double lambda = m.distance > 0 ? 1.0 / m.distance : kInf;
    const bool both_big =
        size_of(m.left) >= min_cluster_size && size_of(m.right) >= min_cluster_size;
    for (const int child : {m.left, m.right}) {
      if (both_big) {
        cluster_of[child] = next_cluster++;
        tree.rows.push_back({cluster, cluster_of[child], lambda, size_of(child)});
        queue.push_back(child);
      } else if (size_of(child) >= min_cluster_size) {
        cluster_of[child] = cluster;  // the cluster goes on, shedding the other side
        queue.push_back(child);
      } else {
        for (const int p : points_under(merges, n, child)) {
          tree.rows.push_back({cluster, p, lambda, 1});
        }
      }
    }
  }
  tree.num_clusters = next_cluster - n;
  return tree;
}

// Stability of cluster c = sum over its points of (lambda_p - lambda_birth(c)),
// where lambda_p is when p leaves c (alone or within a child cluster); the root is
// born at 0. inf - inf counts as 0, so zero distances yield no NaN.
std::vector<double> stabilities(const CondensedTree& tree, int n) {
  std::vector<double> birth(tree.num_clusters, 0.0);
  for (const CondensedRow& row : tree.rows) {
    if (row.child >= n) birth[row.child - n] = row.lambda;
  }
  std::vector<double> stability(tree.num_clusters, 0.0);
  for (const CondensedRow& row : tree.rows) {
    const double b = birth[row.parent - n];
    if (row.lambda > b) stability[row.parent - n] += (row.lambda - b) * row.child_size;
  }
  return stability;
}

// Excess of mass, bottom-up: children have larger ids than their parent, so a
// descending sweep sees them first. A cluster is kept unless its selected
// descendants are strictly more stable (a tie keeps the parent, as the library).
std::vector<bool> select_clusters(const CondensedTree& tree, int n,
                                  bool allow_single_cluster) {
  std::vector<double> stability = stabilities(tree, n);
  std::vector<std::vector<int>> children(tree.num_clusters);
  for (const CondensedRow& row : tree.rows) {
    if (row.child >= n) children[row.parent - n].push_back(row.child - n);
  }
  std::vector<bool> selected(tree.num_clusters, false);
  const int lowest = allow_single_cluster ? 0 : 1;  // cluster 0 is the root
  for (int c = tree.num_clusters - 1; c >= lowest; --c) {
    double subtree = 0.0;
    for (const int child : children[c]) subtree += stability[child];
    if (subtree > stability[c]) {
      stability[c] = subtree;
      continue;
    }
    selected[c] = true;
    std::vector<int> stack = children[c];
    while (!stack.empty()) {
      const int x = stack.back();
      stack.pop_back();
      selected[x] = false;
      stack.insert(stack.end(), children[x].begin(), children[x].end());
    }
  }
  return selected;
}

// A point takes the label of its nearest selected ancestor cluster. A selected root
// keeps only the points whose lambda reaches its last event (split or collapse),
// as the library's do_labelling; the others are -1.
std::vector<int> label_points(const CondensedTree& tree, int n,
                              const std::vector<bool>& selected) {
  std::vector<int> cluster_parent(tree.num_clusters, 0);
  std::vector<int> point_cluster(n, 0);
  std::vector<double> point_lambda(n, 0.0);
  double root_last_lambda = 0.0;
  for (const CondensedRow& row : tree.rows) {
    if (row.parent == n) root_last_lambda = std::max(root_last_lambda, row.lambda);
    if (row.child >= n) {
      cluster_parent[row.child - n] = row.parent - n;
    } else {
      point_cluster[row.child] = row.parent - n;
      point_lambda[row.child] = row.lambda;
    }
  }
  std::vector<int> label_of(tree.num_clusters, -1);
  int next_label = 0;
  for (int c = 0; c < tree.num_clusters; ++c) {
    if (selected[c]) label_of[c] = next_label++;
  }
  std::vector<int> labels(n, -1);
  for (int p = 0; p < n; ++p) {
    int c = point_cluster[p];
    while (c != 0 && !selected[c]) c = cluster_parent[c];
    if (!selected[c]) continue;
    if (c == 0 && point_lambda[p] < root_last_lambda) continue;
    labels[p] = label_of[c];
  }
  return labels;
}

}  // namespace

Result<std::vector<int>> hdbscan(const std::vector<double>& distances, int n,
                                 const HdbscanOptions& options) {
  FEDVAR_RETURN_IF_ERROR(validate(distances, n, options));
  // No cluster can reach min_cluster_size points (this covers n = 0 and n = 1).
  if (n < options.min_cluster_size) return std::vector<int>(n, -1);
  const std::vector<double> d = cleaned(distances, n);
  const int k = std::min(
      n, options.min_samples > 0 ? options.min_samples : options.min_cluster_size);
  const std::vector<double> core = core_distances(d, n, k);
  const std::vector<Merge> merges =
      single_linkage(mutual_reachability_mst(d, core, n), n);
  const CondensedTree tree = condense(merges, n, options.min_cluster_size);
  return label_points(tree, n, select_clusters(tree, n, options.allow_single_cluster));
}

}  // namespace fedvar::aggregator
