#!/usr/bin/env bash
# Installs the Debian packages veil builds against, only those missing.
set -euo pipefail
pkgs=(cmake make gcc g++ pkg-config clang
      libhdf5-dev libcunit1-dev libsodium-dev libfftw3-dev
      libmicrohttpd-dev libcurl4-openssl-dev python3 python3-venv python3-matplotlib
      gdb) # gdb: test_triton prints a stuck server's thread stacks (host/triton/launch.c)

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
updated=0
# Installs those of its arguments that are not installed yet.
install_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "install-deps: installing ${missing[*]}"
  if [ "$updated" = 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
}

install_missing "${pkgs[@]}"
# libFuzzer and the sanitizer runtimes (make fuzz) of the clang that `clang`
# is: Debian versions the package like clang itself (libclang-rt-14-dev for
# Debian 12's clang 14), so the version is read off the installed clang.
major="$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9][0-9]*\)\..*/\1/p' | head -n1)"
if [ -z "$major" ]; then
  echo "install-deps: cannot read clang's major version from 'clang --version'" >&2
  exit 1
fi
install_missing "libclang-rt-$major-dev"
