#!/usr/bin/env bash
# Thread scaling of the cpu backend (issue 16 item 3), measured in one run:
# one thread against every core, alternated PAIRS times, on
#   - batched KS-PBS (bench_gpu --backend cpu, tfhers-2_2-gaussian-2m64,
#     throughput at batch 256), and
#   - a whole model (veil run models/mlp_digits.h5 --rounding-bits 4,
#     --batch = the core count, wall seconds per sample after keygen).
# Efficiency = (rate on T threads) / (T x rate on one thread). Wall time:
# only meaningful on an otherwise idle machine, so the load average is
# recorded before and after every run.
#   scripts/cpu_scaling.sh BUILD_DIR OUT.json [PAIRS]   (default 2 pairs)
# VEIL_SCALING_MODEL=0 leaves the model out (on 16 cores its one-thread run
# is 16 samples, over a minute: scripts/gpu-check.sh --cpu-scaling inside a
# device lease runs the KS-PBS part alone).
set -euo pipefail
build=${1:?usage: scripts/cpu_scaling.sh BUILD_DIR OUT.json [PAIRS]}
out=${2:?usage: scripts/cpu_scaling.sh BUILD_DIR OUT.json [PAIRS]}
pairs=${3:-2}
model=${VEIL_SCALING_MODEL:-1}
cores=$(nproc)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
runs=()
for ((p = 1; p <= pairs; p++)); do
  for t in 1 "$cores"; do
    l0=$(load)
    VEIL_THREADS=$t "$build/bench/bench_gpu" --backend cpu --params tfhers-2_2-gaussian-2m64 \
      --cpu-max-batch 256 --min-time 2 --out "$tmp/g.json" 2>"$tmp/g.log"
    rate=$(grep -E 'ks_pbs batch +256:' "$tmp/g.log" | awk '{print $4}' | tr -d '/s,')
    l1=$(load)
    runs+=("{\"what\": \"ks_pbs_batch256\", \"threads\": $t, \"pair\": $p, \"per_s\": $rate, \"load\": [$l0, $l1]}")
    [ "$model" = 1 ] || continue
    l0=$(load)
    VEIL_THREADS=$t "$build/host/veil" run models/mlp_digits.h5 --mode cpu --rounding-bits 4 \
      --batch "$cores" --limit "$cores" >"$tmp/r.log" 2>&1
    sps=$(grep -E '^cpu: [0-9.]+ s per sample' "$tmp/r.log" | awk '{print $2}')
    agree=$(grep -E '^agreement with simulate' "$tmp/r.log" | cut -d: -f2 | xargs)
    l1=$(load)
    runs+=("{\"what\": \"mlp_digits_4bit_batch$cores\", \"threads\": $t, \"pair\": $p, \"s_per_sample\": $sps, \"agreement\": \"$agree\", \"load\": [$l0, $l1]}")
  done
done
{
  echo "{"
  echo "  \"bench\": \"cpu_scaling\","
  echo "  \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs) model $(grep -m1 '^model' /proc/cpuinfo | cut -d: -f2 | xargs)\","
  echo "  \"cores\": $cores,"
  echo "  \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo "  \"runs\": ["
  for ((i = 0; i < ${#runs[@]}; i++)); do
    printf '    %s%s\n' "${runs[$i]}" "$([ $((i + 1)) -lt ${#runs[@]} ] && echo ,)"
  done
  echo "  ]"
  echo "}"
} >"$out.tmp"
mv "$out.tmp" "$out"
python3 - "$out" <<'PY'
import json, statistics, sys
d = json.load(open(sys.argv[1]))
c = d["cores"]
for what, key, better in (("ks_pbs_batch256", "per_s", "rate"), (f"mlp_digits_4bit_batch{c}", "s_per_sample", "time")):
    one = [r[key] for r in d["runs"] if r["what"] == what and r["threads"] == 1]
    if not one:
        continue
    all_ = [r[key] for r in d["runs"] if r["what"] == what and r["threads"] == c]
    m1, mc = statistics.median(one), statistics.median(all_)
    eff = (mc / (c * m1)) if better == "rate" else (m1 / (c * mc))
    print(f"{what}: 1 thread {m1:.3f}, {c} threads {mc:.3f} -> efficiency {eff:.0%}")
PY
