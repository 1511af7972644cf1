#!/usr/bin/env bash
# make demo: an encrypted table lookup end to end, the tiny model encrypted with
# the default (exact) options, then the bundled digits MLP exact (the default:
# the model's own integers) and rounded to 4 bits side by side: compile report,
# simulate accuracy, encrypted vs simulate and latency, on the GPU when one is
# present, else on the CPU.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
echo "== 1. one encrypted table lookup (TFHE KS-PBS on the CPU) =="
"$build/bench/bench_e2e_lut" --count 6
model=models/mlp_digits.h5
veil="$build/host/veil"
if [ -x "$veil" ] && [ -f "$model" ]; then
  echo
  echo "== 2. models/tiny.h5: encrypted with the defaults (exact lookups) vs simulate =="
  "$veil" run models/tiny.h5 --mode auto --batch 8 --limit 8
  # The digits MLP's accumulators reach 11 bits. By default veil computes the
  # model's own integers (as Concrete ML does): every 10- or 11-bit lookup is exact,
  # decomposed into narrower PBS, each group of PBS on the cheapest parameter
  # set its precision and noise allow (the partitions `veil compile` prints).
  # --rounding-bits 4 (Concrete ML's rounding_threshold_bits) is the speed
  # option: 4-bit lookups, on sets of N = 512 and 1024 (step 3's report).
  echo
  echo "== 3. $model: compile, exact (default) and rounded to 4 bits =="
  exact_report="$("$veil" compile "$model")"
  printf '%s\n' "$exact_report"
  # Step 6's title repeats what the exact program costs, read off this report
  # (not written here: it changes with the compiler).
  exact_pbs="$(sed -n 's/^PBS per sample \([0-9][0-9]*\);.*/\1/p' <<<"$exact_report")"
  exact_parts="$(sed -n 's/^partitions \([0-9][0-9]*\).*/\1/p' <<<"$exact_report")"
  echo
  "$veil" compile "$model" --rounding-bits 4
  echo
  echo "== 4. $model: simulate, all golden samples, exact and rounded =="
  "$veil" run "$model" --mode simulate
  "$veil" run "$model" --mode simulate --rounding-bits 4
  # Encrypted: on a GPU 4 samples of each; on the CPU the exact program (its
  # PBS count and partitions: the report of step 3; `veil run` prints the
  # time it took) gets 1 sample, the rounded one 4.
  exact_n=1
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then exact_n=4; fi
  echo
  echo "== 5. $model: encrypted (GPU if present, else CPU) vs simulate, rounded to 4 bits =="
  "$veil" run "$model" --mode auto --rounding-bits 4 --batch 4 --limit 4
  echo
  echo "== 6. $model: encrypted, exact (the default), $exact_n sample(s) of ${exact_pbs:-?} PBS in ${exact_parts:-?} partitions =="
  "$veil" run "$model" --mode auto --batch "$exact_n" --limit "$exact_n"
else
  echo "(model demo unavailable: $veil or $model missing)"
fi
