#!/usr/bin/env bash
# Exact (the default) against rounded lookups, per sample model: PBS per
# sample, accuracy and latency per sample (simulate for every model; encrypted
# on the cpu backend, and cuda when present, for the models in ENC_MODELS),
# one bench_model run per rounding setting, then one JSON and a plot. Every
# (model, rounding) also gets a predicted cpu latency ("mode": "cpu-predicted"):
# per partition, its PBS per sample x the KS-PBS time bench_pbs measures for its
# parameter set (one thread, CPU time), summed; rows with "mode": "cpu" are whole runs, measured.
# PREDICT=0 skips bench_pbs.
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
models=${MODELS:-models/tiny.h5,models/mlp_digits.h5,models/cnn_digits.h5,models/target_bc.h5,models/source_bc.h5,models/source14_bc.h5,models/source16_bc.h5}
enc=${ENC_MODELS:-models/tiny.h5,models/source_bc.h5}
modes=${MODES:-simulate,cpu,cuda}
samples=${SAMPLES:-2}
parts=()
for r in none 8 6 4; do
  f="$out/bench_exact-$r.json"
  # ENC_MODELS_<r> (ENC_MODELS_8, ENC_MODELS_none, ...): the encrypted models
  # of one setting, e.g. to leave out a run that takes too long on a loaded
  # machine (its latency is then the predicted one only); KEEP=1 reuses a
  # complete part file from an earlier run.
  var="ENC_MODELS_$r"
  if [ "${KEEP:-0}" = 1 ] && [ -s "$f" ] && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$f" 2>/dev/null; then
    echo "bench_exact: keeping $f" >&2
  else
    "$build/bench/bench_model" --models "$models" --enc-models "${!var:-$enc}" --modes "$modes" \
      --batches "$samples" --samples "$samples" --rounding-bits "$r" --out "$f"
  fi
  parts+=("$r=$f")
done
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3  # Debian's has matplotlib
# Predicted encrypted latency for every (model, rounding), measured or not:
# PBS per sample x the measured single-thread KS-PBS time of the program's
# parameter set (bench_pbs, thread CPU time: the machine is shared).
ids=$("$PY" -c 'import json,sys
ids=set()
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        ids |= {q["params"] for q in r.get("partitions", [])} | ({r["params"]} - {""})
print(",".join(sorted(ids)))' "${parts[@]#*=}")
pbs_json="$out/bench_exact-pbs.json"
if [ -n "$ids" ] && [ "${PREDICT:-1}" = 1 ]; then
  "$build/bench/bench_pbs" --params "$ids" --max-n 65536 --fft auto --clock cpu --runs "${PBS_RUNS:-3}" \
    --out "$pbs_json"
  pred=(--pbs "$pbs_json")
else
  pred=()
fi
"$PY" scripts/plot_exact.py "${pred[@]}" "$out/bench_exact.png" "$out/bench_exact.json" "${parts[@]}"
