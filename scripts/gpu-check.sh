#!/usr/bin/env bash
# GPU checks, run on a machine with a CUDA device; scripts/gpu-stage.sh builds
# and stages what they run (BUILD_DIR build-gpu-stage) and says how to call
# this script through the device tool:
#   1. every test binary whose source is labelled `gpu`, called by relative path
#      (test_gpu_ops: every backend op against the cpu, random programs of
#      leveled ops on device buffers included);
#   2. tests/test_gpu_ops once more under compute-sanitizer memcheck, on small
#      batches and n = 32 (VEIL_TEST_GPU_SMALL=1: every kernel shape, short
#      blind rotations);
#   3. bench/bench_gpu on the cuda backend (JSON; the CPU's own figures come
#      from --cpu-scaling).
# Logs and JSON go to $OUT (default ./gpu-out). Exits non-zero if anything
# failed, and also if a gpu test skipped (on this machine a skip means the
# device was not seen).
#
#   4. (--racecheck) the same small run under compute-sanitizer racecheck,
#      for shared-memory races in the on-chip PBS kernels (fused: warp
#      barriers; cluster: digits double-buffered across the cluster barrier;
#      split: three cluster barriers a step, nothing double-buffered),
#      checking only those kernels (--kernel-name kns=pbs_kernel): checking
#      cuFFT's kernels too, the run did not finish in 120 s; filtered, it
#      took about 70 s on an H100 (2026-11-27, 0 hazards);
#   5. (--models; stage with gpu-stage.sh --models) `veil run --mode cuda` on
#      the bundled models, compared with
#      simulate by veil itself (tiny at its default program; target_bc with
#      7-bit lookups, N = 16384: at 8 bits it takes N = 32768, whose keygen
#      and cuFFT steps would spend minutes of the lease; source_bc's exact
#      default, whose threshold reads run as cuda's ks_pbs_extract); then issue 11's GPU
#      bar: bench_model on the digits MLP at 6-bit exact rounding, batch 256
#      (its 64 golden inputs repeated), cuda only (bench_model_mlp6.json: the
#      per-sample latency against Concrete ML's CPU figure, 24.96 s on the
#      Intel Xeon of 2026-12-02, docs/results/MEASURED.md "Whole models on the CPU");
#   6. (--large-n) issue 13 part 2: bench_gpu on the cuda backend at N = 16384
#      (nn-p7-norm2e6-2m40, l = 2) and N = 32768 (nn-p8-norm2e0-2m40), up to
#      batch 1024: the split kernel (pbs_kernel_split) against the cuFFT path
#      (pbs_kernel_cufft) in one run, the only kernels that run there;
#   7. (--multibit) issue 13 part 3: bench_gpu on the cuda backend at
#      tfhers-mb4-2_2-tuniform-2m128 (grouping 4), up to batch 4096: the
#      cluster kernel's multi-bit rotation (key bundles first, n/4 steps on
#      chip: pbs_kernel_cluster) against the cuFFT path (pbs_kernel_cufft);
#      the bar is batch 1 in 1.0 ms on an H100;
#   8. (--cpu-scaling) the machine's CPU: batched KS-PBS on one thread
#      against every core (scripts/cpu_scaling.sh, one pair, the model run
#      left out: issue 16's scaling check at batch 256);
#   9. (--wop) issue 10: the WoP-PBS on the cuda backend (kernels/src/wop.cu):
#      bench_wide --backend cuda, random 4-bit tables compiled with --wop
#      always at 10, 12, 14 and 16 bits, 64 lookups each, every output
#      checked against the table; then the same at 12 and 16 bits on the
#      machine's CPU (every core) for the ratio in one run.
# --max-batch B stops the GPU benchmark at batch B (default 65536).
# --budget S caps the whole run at S seconds (default 480): each step gets at
# most what is left (the device tool runs a command for 600 s at most and
# lends 15 minutes a session, start included).
# --pack leaves one file in $OUT, gpu-check.tgz (every log and JSON): the
# device tool brings back at most 8 files.
# Order: models, gpu tests, WoP, large N, multi-bit, bench, memcheck,
# racecheck, cpu scaling (most telling first).
#
# usage: scripts/gpu-check.sh BUILD_DIR [--no-bench] [--no-memcheck] [--racecheck]
#                             [--models] [--large-n] [--multibit] [--cpu-scaling]
#                             [--wop] [--max-batch B] [--budget S] [--pack]
set -u
B=${1:?usage: scripts/gpu-check.sh BUILD_DIR [--no-bench] [--no-memcheck] [--racecheck] [--models] [--large-n] [--multibit] [--cpu-scaling] [--wop] [--max-batch B] [--budget S] [--pack]}
shift
bench=1
memcheck=1
racecheck=0
models=0
scaling=0
largen=0
multibit=0
wop=0
budget=480
maxb=65536
pack=0
while [ $# -gt 0 ]; do
  case $1 in
    --no-bench) bench=0 ;;
    --no-memcheck) memcheck=0 ;;
    --racecheck) racecheck=1 ;;
    --models) models=1 ;;
    --cpu-scaling) scaling=1 ;;
    --large-n) largen=1 ;;
    --multibit) multibit=1 ;;
    --wop) wop=1 ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --max-batch) maxb=${2:?--max-batch needs a batch size}; shift ;;
    --pack) pack=1 ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
B=$(cd "$B" && pwd) || { echo "gpu-check: no build folder $B" >&2; exit 2; }
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export VEIL_SOURCE_DIR=$PWD
# Debian libraries carried next to the binaries (scripts/gpu-stage.sh),
# and the machine's own CUDA libraries.
[ -d "$B/devlibs" ] && export LD_LIBRARY_PATH="$B/devlibs:${LD_LIBRARY_PATH:-}"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:${CUDA_HOME:-/usr/local/cuda}/lib64"
fail=0

(nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
echo "gpu-check: $(head -c 2000 "$OUT/nvidia-smi.txt" | grep -m1 -E 'H100|H200|NVIDIA' || echo 'no nvidia-smi')"

# run NAME LIMIT_S CMD... : runs with a time limit, log in $OUT/NAME.log
run() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS rc left=$((budget - SECONDS))
  if [ "$left" -lt 10 ]; then
    echo "gpu-check: $name NOT RUN: the --budget of $budget s is spent"
    fail=1
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "gpu-check: $name rc=$rc ($((SECONDS - t0)) s)"
  tail -n 25 "$OUT/$name.log" | sed 's/^/    /'
  if [ "$rc" -ne 0 ]; then
    fail=1
    [ "$rc" -eq 77 ] && echo "gpu-check: $name SKIPPED on a GPU machine: counted as a failure"
    [ "$rc" -eq 124 ] && echo "gpu-check: $name timed out after $limit s"
  fi
  return 0
}

if [ "$models" = 1 ]; then
  # needs host/veil and bench/bench_model in the stage: scripts/gpu-stage.sh --models
  for b in host/veil bench/bench_model; do
    [ -x "$B/$b" ] || { echo "gpu-check: $B/$b missing: stage with scripts/gpu-stage.sh --models"; fail=1; }
  done
  # veil prints "agreement with simulate: E/T values"; anything but E = T fails.
  for m in tiny target_bc cnn_maxpool_digits; do
    opt=""
    [ "$m" = target_bc ] && opt="--rounding-bits 7"
    # max pools: window selections as convolutions, lookups on differences
    [ "$m" = cnn_maxpool_digits ] && opt="--rounding-bits 6"
    # shellcheck disable=SC2086
    run "model_$m" 90 "$B/host/veil" run "models/$m.h5" --mode cuda --batch 16 --limit 16 $opt
    grep -qE 'agreement with simulate: ([0-9]+)/\1 values' "$OUT/model_$m.log" ||
      { echo "gpu-check: model_$m: encrypted outputs differ from simulate"; fail=1; }
  done
  # the exact default: threshold reads (one blind rotation a digit, every
  # comparison extracted from its accumulator: cuda's ks_pbs_extract)
  run model_source_bc_exact 90 "$B/host/veil" run models/source_bc.h5 --mode cuda \
    --batch 16 --limit 16
  grep -qE 'agreement with simulate: ([0-9]+)/\1 values' "$OUT/model_source_bc_exact.log" ||
    { echo "gpu-check: model_source_bc_exact: encrypted outputs differ from simulate"; fail=1; }
  run bench_model_mlp6 240 "$B/bench/bench_model" --models models/mlp_digits.h5 \
    --enc-models models/mlp_digits.h5 --modes cuda --batches 256 --samples 256 \
    --rounding-bits 6 --out "$OUT/bench_model_mlp6.json"
  grep -q '"agreement_with_simulate": 1[,}]' "$OUT/bench_model_mlp6.json" 2>/dev/null ||
    { echo "gpu-check: bench_model_mlp6: no run, or outputs differ from simulate"; fail=1; }
fi

for src in tests/test_*.c; do
  grep -qE '^// LABELS:.*\bgpu\b' "$src" || continue
  name=$(basename "$src" .c)
  bin=$B/tests/$name
  if [ ! -x "$bin" ]; then
    echo "gpu-check: $bin missing"
    fail=1
    continue
  fi
  run "$name" 300 "$bin"
done

if [ "$wop" = 1 ]; then
  for be in cuda cpu; do
    widths=10,12,14,16
    [ "$be" = cpu ] && widths=12,16
    run "bench_wide_wop_$be" 150 "$B/bench/bench_wide" --backend "$be" --methods compiled \
      --tables random --wop always --widths "$widths" --n 64 --out "$OUT/bench_wide_wop_$be.json"
  done
fi

if [ "$largen" = 1 ]; then
  for set in nn-p7-norm2e6-2m40 nn-p8-norm2e0-2m40; do
    run "bench_gpu_$set" 150 "$B/bench/bench_gpu" --backend cuda --params "$set" \
      --max-batch 1024 --min-time 0.2 --out "$OUT/bench_gpu_$set.json"
    grep -q '"pbs_kernel_split"' "$OUT/bench_gpu_$set.json" 2>/dev/null ||
      { echo "gpu-check: bench_gpu_$set: no split kernel figures"; fail=1; }
  done
fi

if [ "$multibit" = 1 ]; then
  set=tfhers-mb4-2_2-tuniform-2m128
  run "bench_gpu_$set" 150 "$B/bench/bench_gpu" --backend cuda --params "$set" \
    --max-batch 4096 --min-time 0.2 --out "$OUT/bench_gpu_$set.json"
  grep -q '"pbs_kernel_cluster"' "$OUT/bench_gpu_$set.json" 2>/dev/null ||
    { echo "gpu-check: bench_gpu_$set: no cluster kernel figures"; fail=1; }
fi

if [ "$bench" = 1 ]; then
  if [ -x "$B/bench/bench_gpu" ]; then
    run bench_gpu 180 "$B/bench/bench_gpu" --backend cuda --max-batch "$maxb" --out "$OUT/bench_gpu.json"
    [ -f "$OUT/bench_gpu.json" ] && cat "$OUT/bench_gpu.json"
  else
    echo "gpu-check: $B/bench/bench_gpu missing"
    fail=1
  fi
fi

if [ "$memcheck" = 1 ]; then
  cs=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
  if [ -x "$cs" ] && [ -x "$B/tests/test_gpu_ops" ]; then
    # cuFFT's kernels are instrumented too (no filter names all of veil's):
    # 240 s, as the small run has grown (N = 32768, multi-bit) since 120 s
    VEIL_TEST_GPU_SMALL=1 run memcheck_test_gpu_ops 240 \
      "$cs" --tool memcheck --error-exitcode 99 "$B/tests/test_gpu_ops"
  elif [ ! -x "$cs" ]; then
    echo "gpu-check: WARNING: compute-sanitizer not found: memcheck NOT RUN"
  else
    echo "gpu-check: $B/tests/test_gpu_ops missing"
    fail=1
  fi
fi

if [ "$racecheck" = 1 ]; then
  cs=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
  if [ -x "$cs" ]; then
    VEIL_TEST_GPU_SMALL=1 run racecheck_test_gpu_ops 120 \
      "$cs" --tool racecheck --kernel-name kns=pbs_kernel --error-exitcode 99 "$B/tests/test_gpu_ops"
  else
    echo "gpu-check: WARNING: compute-sanitizer not found: racecheck NOT RUN"
  fi
fi

if [ "$scaling" = 1 ]; then
  VEIL_SCALING_MODEL=0 run cpu_scaling 120 bash scripts/cpu_scaling.sh "$B" "$OUT/cpu_scaling.json" 1
fi

echo "gpu-check: $([ $fail = 0 ] && echo PASSED || echo FAILED)"
if [ "$pack" = 1 ]; then
  tgz=$(mktemp "${TMPDIR:-/tmp}/gpu-check.XXXXXX") &&
    tar czf "$tgz" -C "$OUT" . &&
    find "$OUT" -mindepth 1 -delete &&
    mv "$tgz" "$OUT/gpu-check.tgz" &&
    echo "gpu-check: packed into $OUT/gpu-check.tgz"
fi
exit $fail
