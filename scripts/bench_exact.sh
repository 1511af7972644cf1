#!/usr/bin/env bash
# Exact (the default) against rounded lookups, per sample model: PBS per
# sample, accuracy and latency per sample (simulate for every model; encrypted
# on the cpu backend, and cuda when present, for the models in ENC_MODELS),
# one bench_model run per rounding setting, then one JSON and a plot.
#
#   scripts/bench_exact.sh BUILD_DIR [OUT_DIR]
#   ENC_MODELS=models/tiny.h5,models/source_bc.h5 SAMPLES=2 MODES=simulate,cpu
#
# Writes OUT_DIR/bench_exact.json ({"rounding": [...], "results": [...]}, each
# result with its "rounding") and OUT_DIR/bench_exact.png.
set -euo pipefail
build=${1:-build}
out=${2:-out}
cd "$(dirname "$0")/.."
mkdir -p "$out"
models=${MODELS:-models/tiny.h5,models/mlp_digits.h5,models/cnn_digits.h5,models/target_bc.h5,models/source_bc.h5}
enc=${ENC_MODELS:-models/tiny.h5,models/source_bc.h5}
modes=${MODES:-simulate,cpu,cuda}
samples=${SAMPLES:-2}
parts=()
for r in none 8 6 4; do
  f="$out/bench_exact-$r.json"
  "$build/bench/bench_model" --models "$models" --enc-models "$enc" --modes "$modes" \
    --batches "$samples" --samples "$samples" --rounding-bits "$r" --out "$f"
  parts+=("$r=$f")
done
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3  # Debian's has matplotlib
"$PY" scripts/plot_exact.py "$out/bench_exact.png" "$out/bench_exact.json" "${parts[@]}"
