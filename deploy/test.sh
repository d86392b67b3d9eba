#!/usr/bin/env bash
# The README's test command: install, build, run every test with CTest; then
# the parsers' second build (fuzz/: clang, AddressSanitizer and
# UndefinedBehaviorSanitizer): their unit tests, and each fuzz target for
# FEDVAR_FUZZ_SECONDS (15) over its seed corpus. Any crash fails.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
./deploy/build.sh
# Third-party Python sources for the integration tests (Flower), when the
# checkout has its sibling shared/vendor; tests skip with a message otherwise.
if [ -d ../shared/vendor ]; then export FEDVAR_VENDOR="$(cd ../shared/vendor && pwd)"; fi
(cd build && OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" ctest --output-on-failure -j 1 --timeout 900)

cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++
cmake --build build-fuzz -j "${FEDVAR_JOBS:-2}"
(cd build-fuzz && ctest --output-on-failure -j 1 --timeout 600)
./fuzz/run.sh build-fuzz "${FEDVAR_FUZZ_SECONDS:-15}"
