#!/usr/bin/env bash
# compile_identical.sh — dumps everything the compiler decides (bench/compile_dump.c:
# report, key table, program fingerprint, every partition's and node's figures in %a)
# for every sample model (models/*.h5) under a list of option sets, one file per
# (model, options); options a model refuses leave the refusal in the file, so they
# must fail identically too. For changes that must keep every compiled program
# (compile-time speedups): dump a build of the base commit once, then every change,
# and diff the two folders (must be empty).
#
# usage: bench/compile_identical.sh BUILD_DIR OUT_DIR [BASE_OUT_DIR]
#   BUILD_DIR  a configured and built veil build tree (its engine/ and loaders/ .a)
#   OUT_DIR    where the dumps go (created; old dumps replaced)
#   BASE_OUT_DIR  when given, diff -r against it at the end (exit 1 on a difference)
# e.g. (the baseline from an untouched build of main, then the change):
#   bench/compile_identical.sh build-base /tmp/ctime-base
#   bench/compile_identical.sh build /tmp/ctime-new /tmp/ctime-base
# Takes 20 minutes or more for a build before the compile-time work on 2 cores (2-core
# Zen 3 KVM: --range-check on a cnn model alone over 4 minutes), less after it
# (MODELS / JOBS below to narrow or widen).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
out=$2
base=${3:-}
jobs=${JOBS:-2}
mkdir -p "$out"
rm -f "$out"/*.txt
bin="$out/compile_dump"
hdf5=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
cc -O2 -std=c11 -I"$root/engine/include" -I"$root/loaders/include" "$root/bench/compile_dump.c" \
    -o "$bin" "$build/loaders/libveil_loaders.a" "$build/engine/libveil_engine.a" \
    -Wl,-rpath,/usr/lib/x86_64-linux-gnu/hdf5/serial $hdf5 -lsodium -lfftw3 -lcrypto -lpthread -lm
OPTS=(
    ""
    "--rounding-bits 4"
    "--rounding-bits 6"
    "--global-p-error 1e-5"
    "--rounding-bits 6 --global-p-error 1e-5"
    "--objective latency"
    "--objective latency:4"
    "--chunk-bits 3"
    "--lookup-bits 4"
    "--wop always"
    "--partitions 1"
    "--p-error 1e-3"
    "--bounds worst-case"
    "--range-margin 0"
    "--max-poly-size 2048"
    "--partitions 2"
    "--key-budget-mb 400"
    "--rounding approximate --rounding-bits 5"
    "--range-check on"
    "--wop off"
    "--objective latency:1 --p-error 1e-2"
    "--partitions 3 --p-error 1e-5"
)
models=${MODELS:-$(cd "$root/models" && ls *.h5 | sed 's/\.h5$//')}
cases=()
for m in $models; do
    for i in "${!OPTS[@]}"; do
        cases+=("$m $i")
    done
done
run_case() {
    local m=$1 i=$2
    # shellcheck disable=SC2086
    nice "$bin" "$root/models/$m.h5" ${OPTS[$i]} >"$out/$m.$i.txt" 2>&1 || echo "exit $?" >>"$out/$m.$i.txt"
    echo "options: ${OPTS[$i]}" >>"$out/$m.$i.txt"
}
for c in "${cases[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    run_case $c &
done
wait
echo "$(ls "$out"/*.txt | wc -l) dumps in $out"
if [ -n "$base" ]; then
    if diff -r -x compile_dump "$base" "$out"; then
        echo "identical to $base"
    else
        echo "DIFFERENT from $base" >&2
        exit 1
    fi
fi
