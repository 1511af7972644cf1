#!/usr/bin/env bash
# make bench: every benchmark, JSON into out/, plots where a plotter exists.
#   bench_pbs    single-core keygen, encrypt, keyswitch, PBS, KS-PBS per set
#   bench_gpu    KS-PBS throughput vs batch size, cpu and cuda in one run
#   bench_model  per sample model: accuracy and latency, simulate vs encrypted
#   bench_server load test of a local veil-server (loopback), and of Triton
#                Inference Server with veil's backend in the same run when
#                scripts/setup-triton.sh can provide tritonserver
set -euo pipefail
build=${1:-build}
# Debian's python3 has python3-matplotlib (install-deps.sh); a pyenv python may not.
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3
cd "$(dirname "$0")/.."
mkdir -p out
run() {
  local name=$1; shift
  if [ -x "$build/bench/$name" ]; then
    echo "== $name $*"
    "$build/bench/$name" "$@" --out "out/$name.json" && echo "   -> out/$name.json"
  else
    echo "== $name: not built, skipped"
  fi
}
run bench_pbs --runs 30
run bench_gpu --backend all
run bench_model
if bash scripts/setup-triton.sh >/dev/null; then
  run bench_server --target both
else
  echo "== bench_server: no Triton venv, veil-server only"
  run bench_server
fi
if [ -f out/bench_gpu.json ]; then
  $PY scripts/plot_bench.py out/bench_gpu out/bench_gpu.json || true
fi
if [ -f out/bench_model.json ]; then
  $PY scripts/plot_model.py out/bench_model.png out/bench_model.json || true
fi
