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
#      7-bit lookups: 12 partitions, k = 1 to 4, N = 512 to 2048, threshold
#      reads (it once compiled to N = 16384, and to 32768 at 8 bits);
#      cnn_maxpool_digits at 6 bits: 7 partitions, N up to 8192; source_bc's
#      exact default, whose threshold reads run as cuda's ks_pbs_extract); then issue 11's GPU
#      bar: bench_model on the digits MLP at 6-bit exact rounding, batch 256
#      (its 64 golden inputs repeated), cuda only (bench_model_mlp6.json: the
#      per-sample latency against Concrete ML's CPU figure, 24.96 s on the
#      Intel Xeon of 2026-12-02, docs/results/MEASURED.md "Whole models on the CPU");
#      last the regressor diabetes_reg compiled with --global-p-error 1e-6 (float
#      targets, no argmax; five partitions, sets past 2^-40 a PBS, threshold
#      reads), also against simulate;
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
# --dry-run walks the same steps with the same options on a machine without
# a GPU (CUDA_VISIBLE_DEVICES is emptied, so a GPU there is not used either),
# before a lease is spent on them: every program and model file a step names
# is there; the libraries each program links resolve, and in a stage every
# one the lent machine lacks is in devlibs/ (scripts/gpu-lent-libs.sh);
# bench_* take every option (`... --help` exits 0 once the parser has taken
# them all) and bench_gpu / bench_wide refuse the missing device before any
# keygen (so their values, --params included, passed); `veil run` lists each
# option in its --help and gets past its parser to the device check, `veil
# compile` finds parameters for the model with the run's compile options, and
# on tiny the same run on the cpu prints the agreement line the check greps;
# test programs start and skip (77); compute-sanitizer's absence here is
# said, not failed (the lent machine has it). The budget is walked in the
# worst case (each step using its whole limit) and the steps it would leave
# unrun are listed (a warning: steps usually end well within their limits).
# --pack packs the dry run's logs. Exit 0 when every check passed, 2 on a bad
# option. tests/test_gpucheck_dry.c runs it on the build under test.
#
# usage: scripts/gpu-check.sh BUILD_DIR [--no-bench] [--no-memcheck] [--racecheck]
#                             [--models] [--large-n] [--multibit] [--cpu-scaling]
#                             [--wop] [--max-batch B] [--budget S] [--pack] [--dry-run]
set -u
B=${1:?usage: scripts/gpu-check.sh BUILD_DIR [--no-bench] [--no-memcheck] [--racecheck] [--models] [--large-n] [--multibit] [--cpu-scaling] [--wop] [--max-batch B] [--budget S] [--pack] [--dry-run]}
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
dry=0
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
    --dry-run) dry=1 ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
# whole numbers: the budget's arithmetic below (bash read "8m" as an error
# and every step as over budget)
case $budget in '' | *[!0-9]*) echo "gpu-check: --budget $budget: expected whole seconds" >&2; exit 2 ;; esac
case $maxb in '' | *[!0-9]*) echo "gpu-check: --max-batch $maxb: expected a whole number" >&2; exit 2 ;; esac
B=$(cd "$B" && pwd) || { echo "gpu-check: no build folder $B" >&2; exit 2; }
cd "$(dirname "$0")/.." || exit 2
dry_out=""
if [ "$dry" = 1 ] && [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-dry.XXXXXX") && dry_out=$OUT
fi
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
export VEIL_SOURCE_DIR=$PWD
# Debian libraries carried next to the binaries (scripts/gpu-stage.sh),
# and the machine's own CUDA libraries.
[ -d "$B/devlibs" ] && export LD_LIBRARY_PATH="$B/devlibs:${LD_LIBRARY_PATH:-}"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:${CUDA_HOME:-/usr/local/cuda}/lib64"
fail=0
# the line veil run prints when every encrypted output equals simulate's
agree_re='agreement with simulate: ([0-9]+)/\1 values'

if [ "$dry" = 1 ]; then
  export CUDA_VISIBLE_DEVICES= # no step of a dry run reaches a GPU
  echo "dry run: nvidia-smi not run" > "$OUT/nvidia-smi.txt"
  echo "gpu-check: DRY RUN of $B (no GPU used), logs in $OUT"
else
  (nvidia-smi || true) > "$OUT/nvidia-smi.txt" 2>&1
  echo "gpu-check: $(head -c 2000 "$OUT/nvidia-smi.txt" | grep -m1 -E 'H100|H200|NVIDIA' || echo 'no nvidia-smi')"
fi

# check NAME MESSAGE CMD...: after step NAME, CMD (a look at its log or
# JSON) must succeed, else MESSAGE and a failure. A dry run has no outputs.
check() {
  local name=$1 msg=$2
  shift 2
  [ "$dry" = 1 ] && return 0
  "$@" 2> /dev/null || { echo "gpu-check: $name: $msg"; fail=1; }
}

# ---- dry run: what a step would run, checked without a device ----------------
# shellcheck source=scripts/gpu-lent-libs.sh
. scripts/gpu-lent-libs.sh
dry_t=0       # seconds spent so far in the worst case
dry_cut=""    # the steps the worst case leaves unrun
dry_libs_done=" "
dry_nocuda=0  # a program said it was built without CUDA
dry_fail() {
  echo "gpu-check: dry FAILED: $*"
  echo "FAILED: $*" >> "$dry_log"
  fail=1
}
dry_note() {
  echo "gpu-check: dry   $*"
  echo "$*" >> "$dry_log"
}
# the libraries bin links: all found; in a stage, each one the lent machine
# lacks carried in devlibs/
dry_libs() {
  local bin=$1 name path
  case $dry_libs_done in *" $bin "*) return 0 ;; esac
  dry_libs_done="$dry_libs_done$bin "
  [ "$(head -c 4 "$bin" | od -An -c | tr -d ' ')" = '177ELF' ] || return 0 # a script
  local l
  l=$(ldd "$bin" 2>&1) || { dry_fail "$bin: ldd failed: $l"; return 0; }
  if echo "$l" | grep -q 'not found'; then
    dry_fail "$bin: libraries not found: $(echo "$l" | grep 'not found' | awk '{print $1}' | xargs)"
  fi
  [ -d "$B/devlibs" ] || return 0
  while read -r name path; do
    case $path in "$B/devlibs/"*) continue ;; esac
    gpu_lib_on_lent_machine "$name" "$path" ||
      dry_fail "$bin links $name ($path), which the lent machine lacks and $B/devlibs does not hold (scripts/gpu-stage.sh)"
  done < <(echo "$l" | awk '/=> \//{print $1, $3}')
}
# dry_run_out OUT_FILE LIMIT CMD...: runs CMD, stdout and stderr to
# OUT_FILE, its exit status in rc (the caller's local)
dry_run_out() {
  local f=$1 lim=$2
  shift 2
  timeout "$lim" "$@" > "$f" 2>&1
  rc=$?
}
dry_refused_device() { grep -qE 'cuda backend has no device|no usable CUDA device|no CUDA device|built without CUDA' "$1"; }
# dry_compile SCRATCH VEIL MODELS ARGS...: each model (MODELS, comma-separated;
# empty: the first argument that is no option's value) compiles with the
# compile options among ARGS (those `veil compile --help` lists, with their
# values): a parameter search that finds no set would fail the step there
dry_compile() {
  local f=$1 veil=$2 models=$3 rc
  shift 3
  local cargs=() i=1 o j val m
  "$veil" compile --help > "$f" 2>&1
  while [ "$i" -le $# ]; do
    o=${!i}
    j=$((i + 1))
    val=""
    case $o in
      --*)
        [ "$j" -le $# ] && case ${!j} in --*) ;; *) val=${!j} ;; esac
        if grep -qE -- "^  $o( |$)" "$f"; then
          cargs+=("$o")
          [ -n "$val" ] && cargs+=("$val")
        fi
        [ -n "$val" ] && i=$j ;;
      *) [ -z "$models" ] && models=$o ;;
    esac
    i=$((i + 1))
  done
  for m in ${models//,/ }; do
    timeout 180 "$veil" compile "$m" "${cargs[@]}" > "$f" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
      dry_note "veil compile $m ${cargs[*]}: $(grep -m1 -E '^partitions [0-9]' "$f" | cut -d'(' -f1)"
    else
      dry_fail "veil compile $m ${cargs[*]}: exit $rc: $(tail -n 3 "$f" | xargs)"
    fi
    cat "$f" >> "$dry_log"
  done
}
# a program of the build and its arguments
dry_prog() {
  local bin=$1 base rc f
  base=$(basename "$bin")
  f=$(mktemp "${TMPDIR:-/tmp}/gpu-check-dry.XXXXXX")
  if [ ! -x "$bin" ]; then
    dry_fail "$bin missing"
    rm -f "$f"
    return 0
  fi
  dry_libs "$bin"
  # files the arguments name: models (veil run MODEL, bench_model's lists)
  local a prev="" m
  for a in "$@"; do
    case $prev in
      --models | --enc-models)
        for m in ${a//,/ }; do [ -f "$m" ] || dry_fail "$base $prev: no file $m"; done ;;
    esac
    case $a in *.h5) [ -f "$a" ] || dry_fail "$base: no file $a" ;; esac
    prev=$a
  done
  case $base in
    veil)
      # `veil run --help` prints without parsing: each option must be
      # listed there, and the run must get past the parser (exit 2: usage)
      # to the device check before it loads anything
      "$bin" "$2" --help > "$f" 2>&1
      for a in "$@"; do
        case $a in --*) grep -qE -- "^ +$a( |$)" "$f" || dry_fail "veil $2: $a not in its --help" ;; esac
      done
      dry_run_out "$f" 60 "$@"
      if [ "$rc" = 0 ] || [ "$rc" = 2 ] || ! dry_refused_device "$f"; then
        dry_fail "$*: exit $rc, not the device refusal: $(tail -n 3 "$f" | xargs)"
      else
        grep -q 'built without CUDA' "$f" && dry_nocuda=1
        dry_note "veil $2: options parsed, stopped at the device: $(grep -m1 -iE 'cuda' "$f" | cut -c1-150)"
      fi
      dry_compile "$f" "$bin" "" "${@:3}"
      # the agreement line the check greps, from the same run on the cpu
      # (tiny only: a keygen of seconds)
      case " $* " in
        *" models/tiny.h5 "*"--mode cuda "*)
          local cpu=() x
          for x in "$@"; do [ "$x" = cuda ] && x=cpu; cpu+=("$x"); done
          dry_run_out "$f" 120 "${cpu[@]}"
          if [ "$rc" = 0 ] && grep -qE "$agree_re" "$f"; then
            dry_note "same run on the cpu: $(grep -m1 -E "$agree_re" "$f")"
          else
            dry_fail "${cpu[*]}: exit $rc, no line matching '$agree_re': $(tail -n 3 "$f" | xargs)"
          fi ;;
      esac ;;
    bench_*)
      dry_run_out "$f" 60 "$@" --help
      [ "$rc" = 0 ] || dry_fail "$* --help: exit $rc (an option refused): $(tail -n 3 "$f" | xargs)"
      if [ "$base" = bench_model ]; then
        local ms="" p2=""
        for a in "$@"; do [ "$p2" = --models ] && ms=$a; p2=$a; done
        if [ -x "$B/host/veil" ]; then
          dry_compile "$f" "$B/host/veil" "${ms:-models/tiny.h5}" "${@:2}"
        else
          dry_note "bench_model's models not compiled: no $B/host/veil"
        fi
      fi
      case $base in
        bench_gpu | bench_wide)
          case " $* " in
            *" --backend cuda "*)
              dry_run_out "$f" 60 "$@"
              if [ "$rc" = 1 ] && grep -q "^$base: --backend: " "$f" && dry_refused_device "$f"; then
                grep -q 'built without CUDA' "$f" && dry_nocuda=1
                dry_note "$base: values checked, stopped at the device: $(tail -n 1 "$f" | cut -c1-150)"
              else
                dry_fail "$*: exit $rc, not the device refusal before any work: $(tail -n 3 "$f" | xargs)"
              fi ;;
          esac ;;
      esac ;;
    test_*)
      dry_run_out "$f" 120 "$@"
      if [ "$rc" = 77 ]; then
        dry_note "$base: starts and skips without a device: $(grep -m1 SKIPPED "$f" | cut -c1-150)"
      else
        dry_fail "$base: exit $rc without a device (expected 77, skipped): $(tail -n 3 "$f" | xargs)"
      fi ;;
    *) dry_note "$base: present" ;;
  esac
  cat "$f" >> "$dry_log"
  rm -f "$f"
}
dry_step() {
  local name=$1 limit=$2
  shift 2
  dry_log=$OUT/$name.log
  local left=$((budget - dry_t))
  if [ "$left" -lt 10 ]; then
    dry_cut="$dry_cut $name"
    limit=0
  else
    [ "$limit" -gt "$left" ] && limit=$left
  fi
  printf 'gpu-check: dry %-34s from %3d s, limit %3d s: %s\n' "$name" "$dry_t" "$limit" "$*"
  echo "dry run: $*" > "$dry_log"
  dry_t=$((dry_t + limit))
  case $1 in
    */compute-sanitizer)
      [ -x "$1" ] || dry_note "$1 absent here (the lent machine's CUDA has it): the program it runs checked alone"
      dry_prog "${@: -1}" ;;
    bash)
      bash -n "$2" || dry_fail "$2: bash syntax"
      case $2 in
        */cpu_scaling.sh) for b in bench/bench_gpu host/veil; do
            [ "$b" = host/veil ] && [ "${VEIL_SCALING_MODEL:-1}" = 0 ] && continue
            [ -x "$B/$b" ] || dry_fail "$2 needs $B/$b"
          done ;;
      esac ;;
    *) dry_prog "$@" ;;
  esac
}

# run NAME LIMIT_S CMD... : runs with a time limit, log in $OUT/NAME.log
run() {
  local name=$1 limit=$2
  shift 2
  if [ "$dry" = 1 ]; then
    dry_step "$name" "$limit" "$@"
    return 0
  fi
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
    check "model_$m" "encrypted outputs differ from simulate" grep -qE "$agree_re" "$OUT/model_$m.log"
  done
  # the exact default: threshold reads (one blind rotation a digit, every
  # comparison extracted from its accumulator: cuda's ks_pbs_extract)
  run model_source_bc_exact 90 "$B/host/veil" run models/source_bc.h5 --mode cuda \
    --batch 16 --limit 16
  check model_source_bc_exact "encrypted outputs differ from simulate" \
    grep -qE "$agree_re" "$OUT/model_source_bc_exact.log"
  run bench_model_mlp6 240 "$B/bench/bench_model" --models models/mlp_digits.h5 \
    --enc-models models/mlp_digits.h5 --modes cuda --batches 256 --samples 256 \
    --rounding-bits 6 --out "$OUT/bench_model_mlp6.json"
  check bench_model_mlp6 "no run, or outputs differ from simulate" \
    grep -q '"agreement_with_simulate": 1[,}]' "$OUT/bench_model_mlp6.json"
  # a regressor and a failure budget per sample (the search's looser sets),
  # neither run on a GPU before: after the bar above, as it costs budget
  run model_diabetes_reg_gpe 60 "$B/host/veil" run models/diabetes_reg.h5 --mode cuda \
    --batch 16 --limit 16 --global-p-error 1e-6
  check model_diabetes_reg_gpe "encrypted outputs differ from simulate" \
    grep -qE "$agree_re" "$OUT/model_diabetes_reg_gpe.log"
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
    check "bench_gpu_$set" "no split kernel figures" grep -q '"pbs_kernel_split"' "$OUT/bench_gpu_$set.json"
  done
fi

if [ "$multibit" = 1 ]; then
  set=tfhers-mb4-2_2-tuniform-2m128
  run "bench_gpu_$set" 150 "$B/bench/bench_gpu" --backend cuda --params "$set" \
    --max-batch 4096 --min-time 0.2 --out "$OUT/bench_gpu_$set.json"
  check "bench_gpu_$set" "no cluster kernel figures" grep -q '"pbs_kernel_cluster"' "$OUT/bench_gpu_$set.json"
fi

if [ "$bench" = 1 ]; then
  if [ -x "$B/bench/bench_gpu" ]; then
    run bench_gpu 180 "$B/bench/bench_gpu" --backend cuda --max-batch "$maxb" --out "$OUT/bench_gpu.json"
    [ -f "$OUT/bench_gpu.json" ] && [ "$dry" = 0 ] && cat "$OUT/bench_gpu.json"
  else
    echo "gpu-check: $B/bench/bench_gpu missing"
    fail=1
  fi
fi

if [ "$memcheck" = 1 ]; then
  cs=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
  if { [ -x "$cs" ] || [ "$dry" = 1 ]; } && [ -x "$B/tests/test_gpu_ops" ]; then
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
  if [ -x "$cs" ] || [ "$dry" = 1 ]; then
    VEIL_TEST_GPU_SMALL=1 run racecheck_test_gpu_ops 120 \
      "$cs" --tool racecheck --kernel-name kns=pbs_kernel --error-exitcode 99 "$B/tests/test_gpu_ops"
  else
    echo "gpu-check: WARNING: compute-sanitizer not found: racecheck NOT RUN"
  fi
fi

if [ "$scaling" = 1 ]; then
  VEIL_SCALING_MODEL=0 run cpu_scaling 120 bash scripts/cpu_scaling.sh "$B" "$OUT/cpu_scaling.json" 1
fi

if [ "$dry" = 1 ]; then
  echo "gpu-check: dry: the worst case (every step its whole limit) spends $dry_t s of the --budget of $budget s"
  [ -n "$dry_cut" ] &&
    echo "gpu-check: dry: WARNING: in that worst case these steps get no time:$dry_cut"
  [ "$dry_nocuda" = 1 ] &&
    echo "gpu-check: dry: SKIPPED what needs the CUDA build: this build has no CUDA backend (the programs said so), so the CUDA code's own start-up was not reached; dry-run a stage of scripts/gpu-stage.sh for that"
fi
echo "gpu-check: $([ $fail = 0 ] && echo PASSED || echo FAILED)$([ "$dry" = 1 ] && echo ' (dry run)')"
if [ "$pack" = 1 ]; then
  tgz=$(mktemp "${TMPDIR:-/tmp}/gpu-check.XXXXXX") &&
    tar czf "$tgz" -C "$OUT" . &&
    find "$OUT" -mindepth 1 -delete &&
    mv "$tgz" "$OUT/gpu-check.tgz" &&
    echo "gpu-check: packed into $OUT/gpu-check.tgz"
  if [ "$dry" = 1 ]; then
    # what the device tool brings back: that one file, every log in it
    left=$(find "$OUT" -mindepth 1 | wc -l)
    logs=$(tar tzf "$OUT/gpu-check.tgz" 2>/dev/null | grep -c '\.log$')
    if [ "$left" = 1 ] && [ "$logs" -gt 0 ]; then
      echo "gpu-check: dry: the pack holds $logs logs and is alone in \$OUT"
    else
      echo "gpu-check: dry FAILED: pack: $left entries left in \$OUT, $logs logs in gpu-check.tgz"
      fail=1
    fi
  fi
fi
[ -n "$dry_out" ] && rm -rf "$dry_out"
exit $fail
