#!/usr/bin/env bash
# Creates or updates the Python virtual environment that holds NVIDIA Triton
# Inference Server (the `tritonserver` binary of PyPI's nvidia-pytriton wheel)
# and tritonclient, for veil's Triton tests, benchmark and client example.
#
#   eval "$(bash scripts/setup-triton.sh --env)"   # sets VEIL_TRITON_VENV,
#                                                  # TRITONSERVER, TRITON_LIBS
#   VENV=$(bash scripts/setup-triton.sh)           # prints the venv path
#
# The venv lives outside the clone, at
# ${VEIL_TRITON_VENV:-$HOME/.cache/veil/triton-venv}, separate from the
# exporter's venv (scripts/setup-python.sh), so installing one never
# re-installs the other. pip runs only when the stamp file in the venv does not
# match the hash of deploy/triton/requirements.txt and the Python version, and
# then into a venv made anew; otherwise this returns at once. pip is bounded
# by VEIL_TRITON_PIP_TIMEOUT seconds (default 600) so a slow PyPI makes
# callers skip, not hang; a failed
# install is remembered for 30 minutes (the next callers, e.g. the tests after
# `make test` tried, fail at once with the same reason; VEIL_TRITON_RETRY=1
# tries again). Progress and errors go to stderr. On failure it says why and
# exits 77, which the Triton tests pass on to CTest as "skipped", or 1 under
# VEIL_REQUIRE_VENVS=1 (CI), a failure (scripts/venv-lib.sh
# venv_fail_status); where the wheel cannot exist (another CPU, a C library
# older than its manylinux_2_35 tag) it exits 77 either way.
# Run tritonserver with LD_LIBRARY_PATH=$TRITON_LIBS (the wheel's libraries).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$here/deploy/triton/requirements.txt"
home="${HOME:-$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6)}"
venv="${VEIL_TRITON_VENV:-${home:-/tmp}/.cache/veil/triton-venv}"
py="${VEIL_PYTHON:-python3}"
pip_timeout="${VEIL_TRITON_PIP_TIMEOUT:-600}"
mode="${1:-}"

# Exits 77 (tests: skipped) or, under VEIL_REQUIRE_VENVS=1, 1: venv_fail_status.
die() { echo "setup-triton: $*" >&2; exit "$(venv_fail_status)"; }
# shellcheck source=scripts/venv-lib.sh
. "$here/scripts/venv-lib.sh"
# A failure of the install itself: remembered (see above), then die.
fail_install() {
  { echo "$hash"; echo "$*"; } >"$venv.failed" 2>/dev/null || true
  die "$*"
}

report() {
  local site
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    || die "venv $venv does not run"
  local bin="$site/pytriton/tritonserver/bin/tritonserver" libs="$site/nvidia_pytriton.libs"
  [ -x "$bin" ] || die "no tritonserver in $bin (nvidia-pytriton changed its layout?)"
  if [ "$mode" = "--env" ]; then
    printf 'export VEIL_TRITON_VENV=%q TRITONSERVER=%q TRITON_LIBS=%q\n' "$venv" "$bin" "$libs"
  else
    echo "$venv"
  fi
}

[ -f "$req" ] || die "missing $req"
# Where nvidia-pytriton has no wheel, Triton cannot be had: a skip, not a
# failed install, even under VEIL_REQUIRE_VENVS=1.
case "$(uname -m)" in
  x86_64 | aarch64) ;;
  *) venv_unavailable setup-triton "nvidia-pytriton has wheels for x86_64 and aarch64 Linux only, not $(uname -m)" ;;
esac
# Its wheels are tagged manylinux_2_35: glibc 2.35 or later.
glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')" || glibc=""
if [ -z "$glibc" ] || [ "$(printf '%s\n' 2.35 "$glibc" | sort -V | head -n1)" != 2.35 ]; then
  venv_unavailable setup-triton "nvidia-pytriton's wheels need glibc 2.35 or later (manylinux_2_35), this system has ${glibc:-no glibc}"
fi
pyver="$(venv_python_version)"
hash="$( { cat "$req"; echo "python $pyver"; } | sha256sum | cut -d' ' -f1)"
stamp="$venv/.veil-triton-requirements.sha256"

if venv_ready "$hash"; then
  report
  exit 0
fi

failed="$venv.failed"
if [ -f "$failed" ] && [ "${VEIL_TRITON_RETRY:-0}" != 1 ] && [ "$(head -n1 "$failed")" = "$hash" ] &&
   [ -n "$(find "$failed" -mmin -30 2>/dev/null)" ]; then
  die "$(tail -n +2 "$failed") (failed less than 30 minutes ago; VEIL_TRITON_RETRY=1 tries again)"
fi

venv_lock "$pip_timeout"
if venv_ready "$hash"; then
  report
  exit 0
fi
venv_create setup-triton
echo "setup-triton: installing $req into $venv (first time: ~1 minute, ~400 MB)" >&2
timeout "$pip_timeout" "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
  -q --timeout 30 -r "$req" >&2 \
  || fail_install "pip install -r $req failed or took over ${pip_timeout}s (is PyPI reachable?); venv left at $venv without stamp (the next run rebuilds it)"
"$venv/bin/python" -c 'import tritonclient.http, yaml, numpy' >&2 \
  || fail_install "packages installed but do not import; see the error above"
echo "$hash" >"$stamp"
rm -f "$failed"
echo "setup-triton: ready: $venv" >&2
report
