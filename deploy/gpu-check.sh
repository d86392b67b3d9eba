#!/usr/bin/env bash
# fedvar on a GPU machine that reaches no package registry. Builds fedvar
# against python3's CUDA PyTorch (the libtorch inside its wheel), with the
# other dependencies unpacked from the .deb files deploy/gpu-prepare.sh
# downloaded beforehand, then runs on cuda:
#   - the unit tests that have a CUDA variant (tests/**/*_test.cpp naming cuda),
#   - a full-width backdoored model (trained here on cuda), purified by the
#     hook's defense (vardefense:preset=federated) on cuda and on cpu with the
#     same seed, ACC/ASR of each side by side,
#   - one `fedvar simulate` round with the VarDefense hook,
# and prints a Markdown table of seconds per phase on each device (stdout;
# progress on stderr).
#
#   deploy/gpu-check.sh [--cpu-dry-run] [--debs DIR] [--work DIR] [--jobs N]
#                       [--torch-import LIBS|CONFIG|AUTO] [--cxx-standard 17|20]
#
# Needs python3 with torch, CMake >= 3.20, a C++ compiler, ninja or make, and
# dpkg-deb (or ar and tar). Installs nothing: the packages go to WORK/prefix,
# the build to WORK/build, the models and reports to WORK/run (WORK: default
# /tmp/fedvar-gpu); with $OUT set, the table, the reports and the log are
# copied there. The default import (LIBS) needs no CUDA toolkit; CONFIG is
# libtorch's TorchConfig.cmake, which also wants nvcc.
#
# --cpu-dry-run takes the same path on a machine without a GPU: Debian's
# libtorch laid out as a wheel's, one nice'd build job, a width-8 model, cpu
# only. It checks the unpacking, the import and the build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

dry=0 debs=.gpu/debs work=/tmp/fedvar-gpu jobs="" import=LIBS cxx=""
while (($#)); do
  case "$1" in
    --cpu-dry-run) dry=1 ;;
    --debs) debs=$2; shift ;;
    --work) work=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --torch-import) import=$2; shift ;;
    --cxx-standard) cxx=$2; shift ;;
    *) sed -n '2,27p' "$0" >&2; exit 2 ;;
  esac
  shift
done
debs=$(cd "$debs" && pwd)
prefix=$work/prefix build=$work/build run=$work/run
mkdir -p "$work" "$run"
phases=$run/phases.jsonl
: >"$phases"
exec 2> >(tee "$run/log.txt" >&2)

say() { echo "gpu-check: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# record PHASE DEVICE SECONDS [NOTE]: one line of the table's data.
record() {
  printf '{"phase":"%s","device":"%s","seconds":%s,"note":"%s"}\n' \
    "$1" "$2" "$3" "${4:-}" >>"$phases"
  publish
}
# publish: copies what the run has so far to $OUT (if set), after each phase,
# so that a run stopped from outside still leaves its results there.
publish() {
  [ -n "${OUT:-}" ] || return 0
  local f
  for f in phases.jsonl accuracy.jsonl log.txt configure-config.log gpu-check.md; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$OUT/"; fi
  done
  if [ -f "$run/build.log" ]; then tail -300 "$run/build.log" >"$OUT/build-tail.log"; fi
}
# elapsed: seconds since the check started. left: the seconds left before
# the whole check must end (a phase that would run past them is stopped by
# `timeout`).
elapsed() { echo $(($(date +%s) - started)); }
left() {
  local n=$((deadline - $(elapsed)))
  echo $((n > 1 ? n : 1))
}

# What this run works with.
trigger="patch:size=3,pattern=checkerboard,position=fixed" target=1
hook="vardefense:preset=federated"
if ((dry)); then
  devices=(cpu) width=8 train_range=0:4000 test_range=0:2000 pool=4000 clients=4 attackers=1
  clean_sizes_cuda=() nice=(nice -n 19)
  jobs=${jobs:-1}
else
  devices=(cuda cpu) width=64 train_range=0:20000 test_range=0:10000 pool=20000 clients=10
  attackers=4
  clean_sizes_cuda=(1000 3000) nice=()
  jobs=${jobs:-$(nproc)}
fi
eval_device=${devices[0]}

# --- the .deb files, unpacked into a private prefix ------------------------
unpack() {
  [ -f "$debs/MANIFEST" ] || { say "no $debs/MANIFEST: run deploy/gpu-prepare.sh first"; exit 1; }
  rm -rf "$prefix"
  mkdir -p "$prefix"
  local f tmp files=("$debs"/*.deb)
  ndebs=${#files[@]}
  for f in "${files[@]}"; do
    if command -v dpkg-deb >/dev/null; then
      dpkg-deb -x "$f" "$prefix"
    else
      tmp=$(mktemp -d)
      (cd "$tmp" && ar x "$f" && tar -xf data.tar.* -C "$prefix")
      rm -rf "$tmp"
    fi
  done
  # Links to absolute paths (libz.so -> /lib/...) point into the prefix.
  local link dest
  while IFS= read -r link; do
    dest=$(readlink "$link")
    if [[ $dest == /* ]]; then ln -sfn "$prefix$dest" "$link"; fi
  done < <(find "$prefix" -type l)
  say "unpacked $ndebs packages into $prefix"
}

# --- libtorch: python3's wheel, or Debian's dressed as one (dry run) -------
torch_cmake_path() {
  if ((dry)); then
    local w=$work/wheel/torch lib dir
    rm -rf "$work/wheel"
    mkdir -p "$w/include" "$w/lib" "$w/share/cmake/Torch"
    for dir in ATen c10 caffe2 torch; do ln -s "/usr/include/$dir" "$w/include/$dir"; done
    for lib in torch torch_cpu c10; do
      ln -s "/usr/lib/x86_64-linux-gnu/lib$lib.so" "$w/lib/lib$lib.so"
    done
    cp /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig*.cmake "$w/share/cmake/Torch/"
    echo "$w/share/cmake"
  else
    python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'
  fi
}

describe_machine() {
  say "cmake: $(cmake --version | head -1); compiler: $(c++ --version | head -1)"
  if ((!dry)); then
    python3 - >&2 <<'EOF'
import torch
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
print(f"gpu-check: torch {torch.__version__}, CUDA {torch.version.cuda}, GPU {name}, "
      f"C++11 ABI {torch.compiled_with_cxx11_abi()}")
EOF
    python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
      { say "python3's torch sees no CUDA device"; exit 1; }
  fi
}

# --- configure and build ----------------------------------------------------
configure() {  # configure BUILD_DIR IMPORT
  local arch=x86_64-linux-gnu gen=() extra=()
  if command -v ninja >/dev/null; then gen=(-G Ninja); fi
  if cmake --version | head -1 | grep -q 'version [4-9]'; then
    extra+=(-DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  fi
  if [ -n "$cxx" ]; then extra+=(-DFEDVAR_CXX_STANDARD="$cxx"); fi
  cmake -S "$root" -B "$1" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_cmake;$prefix/usr;$prefix/usr/lib/$arch/cmake;$prefix/usr/share/cmake" \
    -DCMAKE_LIBRARY_PATH="$prefix/usr/lib/$arch;$prefix/lib/$arch" \
    -DCMAKE_INCLUDE_PATH="$prefix/usr/include" \
    -DCMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES="$prefix/usr/include/$arch" \
    -DOPENSSL_ROOT_DIR="$prefix/usr" \
    -DFEDVAR_FASHION_MNIST="$data" -DFEDVAR_TORCH_IMPORT="$2" "${extra[@]}"
}

cuda_tests() {  # the test targets whose source names a CUDA device
  (cd "$root/tests" && grep -rlE 'kCUDA|cuda::is_available|"cuda' --include='*_test.cpp' . |
    sed -E 's#^\./##; s#\.cpp$##; s#/#_#g' | sort)
}

build_all() {
  local t warnings probe=""
  t=$(now)
  rm -f "$run/config-probe"
  configure "$build" "$import" >"$run/configure.log" 2>&1 ||
    { tail -30 "$run/configure.log" >&2; exit 1; }
  grep 'libtorch ' "$run/configure.log" | sed 's/^-- /gpu-check: /' >&2
  record configure - "$(since "$t")" "$import"
  if ((!dry)) && [ "$import" != CONFIG ]; then
    # libtorch's own CMake package too (it wants nvcc), configured only.
    (
      t=$(now)
      if configure "$work/build-config" CONFIG >"$run/configure-config.log" 2>&1; then
        echo "$(since "$t") ok" >"$run/config-probe"
      else
        echo "$(since "$t") failed: see configure-config.log" >"$run/config-probe"
      fi
    ) &
    probe=$!
  fi
  t=$(now)
  mapfile -t tests < <(cuda_tests)
  say "building fedvar ${tests[*]} with $jobs job(s)"
  # Keep going past a failed file: one run then shows every error.
  local keep_going=(-k)
  if [ -f "$build/build.ninja" ]; then keep_going=(-k 0); fi
  local built=ok
  "${nice[@]}" cmake --build "$build" -j "$jobs" --target fedvar "${tests[@]}" \
    -- "${keep_going[@]}" >"$run/build.log" 2>&1 || built=FAILED
  warnings=$(grep -c 'warning:' "$run/build.log" || true)
  record build - "$(since "$t")" "$built, $jobs jobs, $warnings warnings"
  if [ "$built" != ok ]; then
    grep -E -A4 'error:|Error [0-9]|undefined reference' "$run/build.log" | head -150 >&2
    [ -x "$build/fedvar" ] || { say "fedvar did not build"; exit 1; }
    say "fedvar built; the tests that failed to build are reported as such"
  fi
  # Only the probe: a bare `wait` would also wait for the tee of stderr.
  if [ -n "$probe" ]; then wait "$probe" || true; fi
  if [ -f "$run/config-probe" ]; then
    read -r t warnings <"$run/config-probe"
    record "configure with TorchConfig.cmake" - "$t" "$warnings"
  fi
}

# --- the checks -------------------------------------------------------------
fedvar() { timeout "$(left)" "$build/fedvar" "$@"; }

unit_tests() {
  local name t status=0
  for name in "${tests[@]}"; do
    t=$(now)
    if [ ! -x "$build/tests/$name" ]; then
      record "test $name" "$eval_device" 0 "FAILED to build"
      status=1
      continue
    fi
    if timeout 120 "$build/tests/$name" --gtest_color=no >"$run/$name.log" 2>&1; then
      record "test $name" "$eval_device" "$(since "$t")" "passed"
    else
      record "test $name" "$eval_device" "$(since "$t")" "FAILED"
      tail -20 "$run/$name.log" >&2
      status=1
    fi
  done
  return $status
}

evaluate() {  # evaluate MODEL LABEL: one JSON line of ACC/ASR
  fedvar eval --model "$1" --data "$data" --split test --range "$test_range" \
    --trigger "$trigger" --target "$target" --device "$eval_device" |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print(json.dumps(
      {"model": sys.argv[1], "acc": r["acc"], "asr": r["asr"]}))' "$2" >>"$run/accuracy.jsonl"
}

train_model() {
  local t
  t=$(now)
  fedvar train --data "$data" --out "$run/backdoored.safetensors" --range "$train_range" \
    --test-range 0:2000 --poison "$trigger" --target "$target" --ratio 0.05 --epochs 3 \
    --lr 0.05 --width "$width" --seed 0 --device "${devices[0]}" >/dev/null
  record "train (width $width, $train_range, 3 epochs)" "${devices[0]}" "$(since "$t")"
  evaluate "$run/backdoored.safetensors" backdoored
}

purify() {  # purify DEVICE CLEAN_SIZE
  local out=$run/purified-$1-$2.safetensors t
  t=$(now)
  fedvar purify --model "$run/backdoored.safetensors" --out "$out" --data "$data" \
    --range "-$2:" --defense "$hook" --seed 0 --device "$1" >"$run/purify-$1-$2.json"
  record "purify $2 clean: wall" "$1" "$(since "$t")"
  python3 - "$run/purify-$1-$2.json" "$1" "$2" >>"$phases" <<'EOF'
import json, sys
report, device, clean = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for key, value in report["seconds"].items():
    print(json.dumps({"phase": f"purify {clean} clean: {key}", "device": device,
                      "seconds": round(value, 2), "note": ""}))
EOF
  evaluate "$out" "purified on $1 ($2 clean)"
}

simulate_round() {  # simulate_round DEVICE
  local out=$run/simulate-$1 t
  rm -rf "$out"
  t=$(now)
  fedvar simulate --data "$data" --out "$out" --clients "$clients" --attackers "$attackers" \
    --rounds 1 --width "$width" --pool-size "$pool" --clean-size 1000 \
    --test-size "${test_range#0:}" --hook "$hook" --seed 0 --device "$1" >/dev/null
  record "simulate 1 round: wall" "$1" "$(since "$t")" "$clients clients"
  cat "$out"/*.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    for key, value in r["seconds"].items():
        print(json.dumps({"phase": f"simulate round: {key}", "device": sys.argv[1],
                          "seconds": round(value, 2), "note": r.get("run", "")}))
' "$1" >>"$phases"
}

report() {
  python3 - "$phases" "$run/accuracy.jsonl" "${devices[@]}" <<'EOF'
import json, sys
phases = [json.loads(l) for l in open(sys.argv[1])]
devices = ["-"] + sys.argv[3:]
rows = {}
for p in phases:
    row = rows.setdefault(p["phase"], {"note": ""})
    row[p["device"]] = p["seconds"]
    row["note"] = row["note"] or p["note"]
print("| phase | " + " | ".join("s" if d == "-" else f"{d} s" for d in devices) + " | note |")
print("|---" * (len(devices) + 2) + "|")
for name, row in rows.items():
    cells = [f"{row[d]:.2f}" if d in row else "" for d in devices]
    print(f"| {name} | " + " | ".join(cells) + f" | {row['note']} |")
print("\n| model | ACC % | ASR % |\n|---|---|---|")
for line in open(sys.argv[2]):
    r = json.loads(line)
    print(f"| {r['model']} | {r['acc']:.2f} | {r['asr']:.2f} |")
EOF
}

# within BUDGET ACTION...: runs the action if the script has used less than
# BUDGET seconds so far, else records it as skipped (the whole check is meant
# to end within 8 minutes on the GPU machine).
within() {
  local budget=$1
  shift
  if (($(elapsed) < budget)); then
    "$@"
  else
    say "skipped (past ${budget} s): $*"
    record "$*" - 0 "skipped: past ${budget} s"
  fi
}

main() {
  local t status=0
  started=$(date +%s) deadline=575
  if ((dry)); then deadline=7200; fi
  describe_machine
  t=$(now)
  unpack
  record unpack - "$(since "$t")" "$ndebs packages"
  torch_cmake=$(torch_cmake_path)
  data=$prefix/usr/share/datasets/fashion-mnist
  # fedvar's dependencies load from the prefix (the build runs test binaries).
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  build_all
  : >"$run/accuracy.jsonl"
  unit_tests || status=1
  train_model || { say "training failed"; status=1; }
  if ((dry)); then
    purify cpu 1000 || status=1
    simulate_round cpu || status=1
  else
    # The GPU's numbers first; the CPU's (same seed) last, as time allows.
    for n in "${clean_sizes_cuda[@]}"; do within 400 purify cuda "$n" || status=1; done
    within 430 simulate_round cuda || status=1
    within 470 purify cpu 1000 || status=1
  fi
  report | tee "$run/gpu-check.md"
  publish
  return $status
}
main
