# shellcheck shell=bash
# Sourced by scripts/gpu-stage.sh and scripts/gpu-check.sh: which shared
# libraries the lent GPU machine already has (../shared/device/README.md):
# glibc's, libstdc++ and libgcc_s (newer there; compute-sanitizer needs
# them), the NVIDIA driver's, and CUDA's own under /usr/local/cuda. Every
# other library a staged program links travels in build-gpu-stage/devlibs.
# gpu_lib_on_lent_machine NAME PATH: 0 when that machine has it.
gpu_lib_on_lent_machine() {
  echo "$1" | grep -Eq '^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv|libcuda\.so|libnvidia|libstdc\+\+|libgcc_s)' &&
    return 0
  case "$2" in /usr/local/cuda*) return 0 ;; esac
  case "$(readlink -f "$2")" in /usr/local/cuda*) return 0 ;; esac
  return 1
}
