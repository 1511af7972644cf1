#!/usr/bin/env bash
# make demo: an encrypted table lookup end to end, then encrypted inference of
# the bundled digits MLP (simulate vs encrypted: accuracy and latency), on the
# GPU when one is present, else on the CPU.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
echo "== 1. one encrypted table lookup (TFHE KS-PBS on the CPU) =="
"$build/bench/bench_e2e_lut" --count 6
model=models/mlp_digits.h5
if [ -x "$build/host/veil" ] && [ -f "$model" ]; then
  echo
  # Lookups rounded to 4 bits (Concrete ML's rounding_threshold_bits): the
  # program then runs on N = 2048 parameters, about 10 s a sample on 2 cores.
  # The default (8 bits) needs N = 32768: right for a GPU, slow on a CPU.
  echo "== 2. $model: compile (lookups rounded to 4 bits, exactly) =="
  "$build/host/veil" compile "$model" --rounding-bits 4
  echo
  echo "== 3. $model: simulate, all golden samples =="
  "$build/host/veil" run "$model" --mode simulate --rounding-bits 4
  echo
  echo "== 4. $model: encrypted (GPU if present, else CPU) vs simulate, 4 samples =="
  "$build/host/veil" run "$model" --mode auto --rounding-bits 4 --batch 4 --limit 4
else
  echo "(model demo unavailable: $build/host/veil or $model missing)"
fi
