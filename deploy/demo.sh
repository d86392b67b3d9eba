#!/usr/bin/env bash
# The README's main job: install, build, then a small federated simulation on
# real Fashion-MNIST: 10 client processes (4 run the Distributed Backdoor
# Attack) and one server on loopback, once without a hook and once with the
# VarDefense hook, printing ACC/ASR per round on stderr and a table of the
# last round on stdout; the plot is out/simulate/plot.svg.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh >&2  # stdout carries only the results
./deploy/build.sh >&2
exec build/fedvar simulate --out out/simulate --compare "$@"
