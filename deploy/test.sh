#!/usr/bin/env bash
# The README's test command: install, build, run every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
./deploy/build.sh
cd build
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" ctest --output-on-failure -j 1 --timeout 900
