"""Flower's aggregation functions as the reference for fedvar's robust rules.

  flower_reference.py INPUT.json

INPUT holds {"dtype": "float32" or "float64",
             "clients": [[layer, ...], ...]  (nested lists; every client has
                                              the same layer shapes),
             "num_examples": [int, ...], "beta": float,
             "num_malicious": int, "to_keep": int}.
Prints one JSON object whose vectors are flattened as fedvar's [n, d] form
holds a client (each layer row-major, layers concatenated in order):
  "median"         aggregate_median
  "trimmed_mean"   aggregate_trimmed_avg(beta)
  "krum"           aggregate_krum(num_malicious, to_keep=0)
  "multi_krum"     aggregate_krum(num_malicious, to_keep)
  "weighted_mean"  aggregate (FedAvg, weighted by num_examples)
  "distances"      _compute_distances: squared L2 distances, [n * n] row-major
Exit code 77 (a test's "skip"), with a message on stderr, when Flower's
sources cannot be imported (put them on PYTHONPATH); 1 on any other error.
"""
import json
import sys

try:
    import numpy as np
    from flwr.server.strategy import aggregate as flower
except ImportError as error:
    print(f"cannot import flwr.server.strategy.aggregate: {error}", file=sys.stderr)
    sys.exit(77)


def flat(layers):
    return np.concatenate([np.asarray(layer).ravel() for layer in layers]).tolist()


def main(path):
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    dtype = np.dtype(spec["dtype"])
    results = [
        ([np.asarray(layer, dtype=dtype) for layer in client], int(count))
        for client, count in zip(spec["clients"], spec["num_examples"])
    ]
    f_mal = int(spec["num_malicious"])
    weights = [layers for layers, _ in results]
    out = {
        "median": flat(flower.aggregate_median(results)),
        "trimmed_mean": flat(flower.aggregate_trimmed_avg(results, spec["beta"])),
        "krum": flat(flower.aggregate_krum(results, f_mal, 0)),
        "multi_krum": flat(flower.aggregate_krum(results, f_mal, int(spec["to_keep"]))),
        "weighted_mean": flat(flower.aggregate(results)),
        "distances": np.asarray(flower._compute_distances(weights)).ravel().tolist(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(1)
    main(sys.argv[1])
