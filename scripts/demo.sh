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
  echo "== 2. $model: compile =="
  "$build/host/veil" compile "$model"
  echo
  echo "== 3. $model: simulate vs encrypted on a few golden samples =="
  "$build/host/veil" run "$model" --mode auto --input "$model" --batch 4 --limit 4
else
  echo "(model demo unavailable: $build/host/veil or $model missing)"
fi
