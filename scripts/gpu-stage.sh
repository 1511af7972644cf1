#!/usr/bin/env bash
# Prepare the GPU checks for a lent machine (the device tool: 64 MiB of
# working tree and carried paths, 15 minutes of device time a session, start
# included), here, where there is no GPU:
#   1. configure build-gpu for sm_90 without -march=native (the lent machine's
#      CPU differs) and build only what scripts/gpu-check.sh runs;
#   2. copy those binaries into build-gpu-stage/ (the layout gpu-check.sh
#      reads: tests/, bench/, host/) with the Debian libraries they link
#      (devlibs/: HDF5, libsodium, FFTW, CUnit, ...; not glibc, libstdc++ or
#      libgcc_s, whose newer builds there run these binaries and which
#      compute-sanitizer itself needs, not the NVIDIA driver, not CUDA's own
#      libraries, which the lent machine has);
#   3. refuse when the stage would not fit the carry limit.
# A full CUDA build is about 170 MB (fifty statically linked test binaries),
# so carrying build-gpu itself is refused.
#
# Then, in one `run` call (timeout_s about 540, budget below it), carrying
# build-gpu-stage:
#   export LD_LIBRARY_PATH=$PWD/build-gpu-stage/devlibs:$LD_LIBRARY_PATH; \
#   OUT=$OUT bash scripts/gpu-check.sh build-gpu-stage --pack --budget 480 [options]
# and give_back unless rerunning at once. First, here (no GPU, seconds):
#   bash scripts/gpu-check.sh build-gpu-stage --pack --budget 480 [options] --dry-run
#
# usage: scripts/gpu-stage.sh [--models] [ARCH]   (ARCH: CUDA architectures, default 90)
set -eu
cd "$(dirname "$0")/.."
models=0
[ "${1:-}" = --models ] && { models=1; shift; }
arch=${1:-90}
B=build-gpu
S=build-gpu-stage
cmake -S . -B "$B" -DVEIL_CUDA=ON -DVEIL_NATIVE=OFF -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DCMAKE_BUILD_TYPE=Release > /dev/null
# bench_wide: gpu-check.sh --wop
targets="test_gpu_ops bench_gpu bench_wide veil-h5check"
[ "$models" = 1 ] && targets="$targets veil bench_model"
# shellcheck disable=SC2086
cmake --build "$B" -j"$(nproc)" --target $targets
rm -rf "$S"
mkdir -p "$S/tests" "$S/bench" "$S/host" "$S/devlibs"
cp "$B/tests/test_gpu_ops" "$S/tests/"
# The loaders check untrusted .h5 files in veil-h5check, found beside the
# program that loads (this build's own path does not exist over there).
cp "$B/loaders/veil-h5check" "$S/tests/"
cp "$B/bench/bench_gpu" "$B/bench/bench_wide" "$S/bench/"
if [ "$models" = 1 ]; then
  cp "$B/host/veil" "$S/host/"
  cp "$B/bench/bench_model" "$S/bench/"
  cp "$B/loaders/veil-h5check" "$S/host/"
  cp "$B/loaders/veil-h5check" "$S/bench/"
fi
# shellcheck source=scripts/gpu-lent-libs.sh
. scripts/gpu-lent-libs.sh
for prog in "$S"/tests/* "$S"/bench/* "$S"/host/*; do
  [ -f "$prog" ] || continue
  ldd "$prog" | awk '/=> \//{print $1, $3}' | while read -r name path; do
    gpu_lib_on_lent_machine "$name" "$path" && continue
    [ -e "$S/devlibs/$name" ] || cp -L "$path" "$S/devlibs/$name"
  done
done
kib=$(du -sk "$S" | cut -f1)
tree_kib=$(git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
echo "gpu-stage: $S ${kib} KiB (+ the tracked tree ${tree_kib} KiB) for CUDA architectures $arch"
if [ $((kib + tree_kib)) -gt $((60 * 1024)) ]; then
  echo "gpu-stage: over 60 MiB with the tree: the device tool carries 64 MiB at most" >&2
  exit 1
fi
