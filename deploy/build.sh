#!/usr/bin/env bash
# Configures and builds fedvar (Release) into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
# Two jobs: each libtorch translation unit takes ~1.5 GB of memory.
cmake --build build -j "${FEDVAR_JOBS:-2}"
