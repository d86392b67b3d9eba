#!/usr/bin/env bash
# Installs fedvar's build and run dependencies from Debian 12 packages (as root).
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev zlib1g-dev libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libssl-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libgtest-dev
  dataset-fashion-mnist python3-torch python3-torchvision
  # Flower's sources (../shared/vendor) for the tests that check against it
  python3-numpy python3-grpcio python3-protobuf python3-cryptography python3-pycryptodome
  python3-zmq python3-msgpack  # fedvar.remote, the Python client of fedvar defend
  # fuzz/: clang with libFuzzer and the sanitizer runtimes, llvm-symbolizer
  clang libclang-rt-14-dev llvm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
