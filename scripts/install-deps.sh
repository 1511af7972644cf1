#!/usr/bin/env bash
# Installs the Debian packages veil builds against, only those missing.
set -euo pipefail
pkgs=(cmake make gcc g++ pkg-config clang libclang-rt-14-dev
      libhdf5-dev libcunit1-dev libsodium-dev libfftw3-dev
      libmicrohttpd-dev libcurl4-openssl-dev python3 python3-venv python3-matplotlib
      gdb) # gdb: test_triton prints a stuck server's thread stacks (host/triton/launch.c)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
