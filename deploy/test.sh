#!/usr/bin/env bash
# The README's test command: install, build, run every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
./deploy/build.sh
# Third-party Python sources for the integration tests (Flower), when the
# checkout has its sibling shared/vendor; tests skip with a message otherwise.
if [ -d ../shared/vendor ]; then export FEDVAR_VENDOR="$(cd ../shared/vendor && pwd)"; fi
cd build
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" ctest --output-on-failure -j 1 --timeout 900
