#!/usr/bin/env bash
# Downloads, as Debian 12 .deb files, everything deploy/gpu-check.sh needs
# besides PyTorch, CMake and a compiler, for a GPU machine that reaches no
# package registry: fedvar's build dependencies (headers, CMake files, the
# libraries' .so links), the shared libraries they load with their own
# dependencies, and the Fashion-MNIST data set. Nothing is installed here;
# gpu-check.sh unpacks the files there into a private prefix.
#
#   deploy/gpu-prepare.sh [DIR]     DIR: default .gpu/debs in the checkout
#
# Run on an amd64 Debian 12 machine whose apt reaches Debian's registry (as
# root it refreshes apt's lists first). Writes DIR/MANIFEST: package, version.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.gpu/debs}"

# Headers, CMake package files and the unversioned .so links, without the
# -dev packages' own dependencies (only their run-time libraries, below).
dev=(
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libboost1.74-dev
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev
  zlib1g-dev libssl-dev
)
# The shared libraries fedvar links; their dependencies are added below.
run=(libzmq5 libspdlog1.10 libfmt9 libssl3 zlib1g)
# The target's own C and C++ runtime serves: loading Debian's copies of
# these beside another system's would break every program using them.
base='^(libc6|libgcc-s1|libstdc\+\+6|gcc-12-base)$'
data=(dataset-fashion-mnist)

if [ "$(dpkg --print-architecture)" != amd64 ]; then
  echo "gpu-prepare: run this on amd64 (the GPU machine is x86-64)" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then apt-get update -q >&2; fi

mapfile -t closure < <(
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${run[@]}" |
    grep -v '^[ <]' | grep -Ev "$base" | sort -u)
packages=("${dev[@]}" "${closure[@]}" "${data[@]}")

mkdir -p "$dir"
rm -f "$dir"/*.deb "$dir/MANIFEST"
echo "gpu-prepare: downloading ${#packages[@]} packages into $dir" >&2
(cd "$dir" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "${packages[@]}" >&2)
for f in "$dir"/*.deb; do
  dpkg-deb -f "$f" Package Version | sed "s/^[A-Za-z]*: //" | paste -sd" "
done >"$dir/MANIFEST"
files=("$dir"/*.deb)
echo "gpu-prepare: ${#files[@]} files, $(du -sh "$dir" | cut -f1)" >&2
