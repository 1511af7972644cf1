#!/usr/bin/env bash
# A/B of two bench_pbs binaries (an old build and a new one) run at the same
# time on the same core, round after round: the scheduler interleaves them
# a few milliseconds at a time, so both meet the same noise. On a shared VM
# separate runs of one binary varied by up to 1.5x (2026-12-07, a 2-core
# Zen 3: one-at-a-time KS-PBS ratios 0.64 to 1.30 between two builds run
# one after the other); run concurrently the same pair gave 0.91 to 0.94.
# scripts/fft_ab.sh compares transform kernels inside one process; this
# compares whole lookups (keyswitch, blind rotation, key streaming).
#
#   scripts/pbs_ab.sh OLD_BENCH_PBS NEW_BENCH_PBS PARAMS [ROUNDS] [RUNS]
#
# PARAMS: parameter set ids, comma-separated (bench_pbs --params); ROUNDS
# (default 4) rounds of one concurrent pair; RUNS (default 15) bench_pbs
# --runs. Thread CPU time (--clock cpu), veil's own FFT path (--fft auto),
# pinned to the last CPU. Prints one JSON line per set and round (new /
# old for one at a time PBS, KS-PBS and the lockstep batch), then one per
# set with the medians of those ratios. An old binary: build a worktree of
# the old revision (git worktree add), or copy build/bench/bench_pbs aside
# before rebuilding.
set -euo pipefail
usage="usage: scripts/pbs_ab.sh OLD_BENCH_PBS NEW_BENCH_PBS PARAMS [ROUNDS] [RUNS]"
old=${1:?$usage}
new=${2:?$usage}
params=${3:?$usage}
rounds=${4:-4}
runs=${5:-15}
for b in "$old" "$new"; do
  [ -x "$b" ] || { echo "pbs_ab: $b: not an executable" >&2; exit 2; }
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "pbs_ab: ROUNDS '$rounds': a positive integer" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cpu=$(( $(nproc) - 1 ))
IFS=, read -r -a sets <<< "$params"
for r in $(seq "$rounds"); do
  # one set at a time, so that the pair stays in step (keygen with keygen,
  # lookups with lookups)
  for i in "${!sets[@]}"; do
    taskset -c "$cpu" "$old" --params "${sets[$i]}" --runs "$runs" --fft auto --clock cpu \
      --out "$tmp/old-$r-$i.json" > "$tmp/old.log" 2>&1 &
    po=$!
    taskset -c "$cpu" "$new" --params "${sets[$i]}" --runs "$runs" --fft auto --clock cpu \
      --out "$tmp/new-$r-$i.json" > "$tmp/new.log" 2>&1 &
    pn=$!
    rc=0
    wait "$po" || rc=1
    wait "$pn" || rc=1
    if [ $rc -ne 0 ]; then
      echo "pbs_ab: round $r, set ${sets[$i]}: a bench_pbs run failed:" >&2
      cat "$tmp/old.log" "$tmp/new.log" >&2
      exit 1
    fi
  done
done
python3 - "$tmp" "$rounds" "${#sets[@]}" <<'EOF'
import json, statistics, sys
tmp, rounds, nsets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keys = ("pbs", "ks_pbs", "lockstep")
def figs(s):
    return (s["pbs"]["median_ms"], s["ks_pbs"]["median_ms"], s["batch"]["lockstep_ms_per_ks_pbs"])
ratios = {}
for r in range(1, rounds + 1):
    old, new = {}, {}
    for i in range(nsets):
        old.update({s["id"]: figs(s) for s in json.load(open(f"{tmp}/old-{r}-{i}.json"))["sets"]})
        new.update({s["id"]: figs(s) for s in json.load(open(f"{tmp}/new-{r}-{i}.json"))["sets"]})
    for sid in old:
        q = [n / o for o, n in zip(old[sid], new[sid])]
        ratios.setdefault(sid, []).append(q)
        print(json.dumps({"set": sid, "round": r, "old_ms": old[sid], "new_ms": new[sid],
                          "new_over_old": dict(zip(keys, [round(x, 3) for x in q]))}))
for sid, qs in ratios.items():
    print(json.dumps({"set": sid, "rounds": rounds, "median_new_over_old":
                      {k: round(statistics.median(q[i] for q in qs), 3) for i, k in enumerate(keys)}}))
EOF
