#!/usr/bin/env bash
# The README's main job: install, build, then plant a backdoor in a small
# ResNet18 on real Fashion-MNIST and show it with ACC/ASR, next to a model
# trained on the same images without poison.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
./deploy/build.sh
fedvar=build/aggregator/fedvar
data=/usr/share/datasets/fashion-mnist
trigger=patch:size=5,pattern=checkerboard,position=random
out=out/demo
mkdir -p "$out"
common=(--data "$data" --range 0:6000 --test-range 0:2000 --width 16 --epochs 3 --lr 0.05)
"$fedvar" train "${common[@]}" --out "$out/clean.safetensors"
"$fedvar" train "${common[@]}" --out "$out/poisoned.safetensors" \
  --poison "$trigger" --target 0 --ratio 0.05
for m in clean poisoned; do
  printf '%-9s ' "$m"
  "$fedvar" eval --model "$out/$m.safetensors" --data "$data" --trigger "$trigger" --target 0
done
