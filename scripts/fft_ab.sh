#!/usr/bin/env bash
# Same-process A/B of veil's transform kernels: the template
# (engine/src/fft/fft_template.h) at git revision REV against the working
# tree's, on one code path, alternated call by call (bench/fft_ab/fft_ab.c).
# Separate runs of bench_pbs vary by 30% on a shared VM; the ratio of one
# such run is the figure to report for a kernel change.
#
#   scripts/fft_ab.sh BUILD REV [PATH] [ROUNDS] [N...]
#
# BUILD: a configured and built tree (its libveil_engine.a and compile
# flags); PATH: avx2 (default), avx512 or portable (the CPU must run it);
# ROUNDS (default 100) x 50 calls per kernel and version; N default
# 1024 2048 4096 8192. Runs pinned to the last CPU. JSON lines on stdout.
set -euo pipefail
build=${1:?usage: scripts/fft_ab.sh BUILD REV [PATH] [ROUNDS] [N...]}
rev=${2:?usage: scripts/fft_ab.sh BUILD REV [PATH] [ROUNDS] [N...]}
path=${3:-avx2}
rounds=${4:-100}
shift $(( $# < 4 ? $# : 4 ))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1024 2048 4096 8192)
repo=$(cd "$(dirname "$0")/.." && pwd)
case "$path" in
  avx2) w=4; flags="-mavx2 -mfma -mno-avx512f" ;;
  avx512) w=8; flags="-mavx512f -mavx512dq -mavx512vl -mavx2 -mfma" ;;
  portable) w=2; flags="" ;;
  *) echo "fft_ab: path '$path': avx2, avx512 or portable" >&2; exit 2 ;;
esac
lib="$build/engine/libveil_engine.a"
[ -f "$lib" ] || { echo "fft_ab: $lib missing: build $build first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/a"
git -C "$repo" show "$rev:engine/src/fft/fft_template.h" > "$tmp/a/fft_template.h"
git -C "$repo" show "$rev:engine/src/fft/fft_internal.h" > "$tmp/a/fft_internal.h"
cc=${CC:-gcc}
common="-O3 -DNDEBUG -ffp-contract=off -std=c11 -D_DEFAULT_SOURCE -I$repo/engine/include"
for v in a b; do
  src="$repo/engine/src/fft"
  [ $v = a ] && src="$tmp/a"
  printf '#define VEIL_W %s\n#define VEIL_FFT_NAME(x) ab_%s_##x\n#define VEIL_FFT_KERNELS kern_%s\n#include "fft_template.h"\n' \
    "$w" "$v" "$v" > "$tmp/$v.c"
  # shellcheck disable=SC2086
  $cc $common $flags -I"$src" -c "$tmp/$v.c" -o "$tmp/$v.o"
done
libs=$(pkg-config --libs fftw3 2>/dev/null || echo -lfftw3)
# shellcheck disable=SC2086
$cc $common -I"$repo/engine/src/fft" "$repo/bench/fft_ab/fft_ab.c" "$tmp/a.o" "$tmp/b.o" "$lib" \
  $libs -lsodium -lm -lpthread -o "$tmp/fft_ab"
cpu=$(( $(nproc) - 1 ))
taskset -c "$cpu" "$tmp/fft_ab" "$path" "$rounds" "${sizes[@]}"
