#!/usr/bin/env bash
# Creates or updates the optional venv with Zama's concrete-python, used only
# by the peer measurements in scripts/peers/ (never by make test or CI, and
# not a dependency of veil).
#
#   VENV=$(bash scripts/peers/setup-concrete.sh)      # concrete-python alone
#   VENV=$(bash scripts/peers/setup-concrete.sh ml)   # Concrete ML 1.9.0 (+ torch, brevitas)
#
# prints the venv path on stdout.
#
# The version is the one Concrete ML 1.9.0 pins (its PyPI metadata:
# "Requires-Dist: concrete-python (==2.10.0)", numpy ==1.26.4,
# setuptools ==75.3.0, which concrete needs for pkg_resources), so the
# numbers match what Concrete ML 1.9 runs on.
# "ml" installs concrete-ml==1.9.0 and the pins of its PyPI metadata (torch
# 2.3.1, brevitas 0.10.2, concrete-python 2.10.0, numpy 1.26.4; PyPI's torch
# is the CUDA build, ~3 GB with its nvidia-* wheels, and runs on the CPU) into
# a venv of its own, for scripts/peers/concrete_ml_model.py.
# The venv lives outside the clone, at
# ${VEIL_CONCRETE_VENV:-$HOME/.cache/veil/concrete-venv} (concrete-ml-venv
# for "ml"). pip runs only when the
# stamp file in the venv does not match the hash of the pins below and the
# Python version; otherwise this script returns at once. Progress and errors
# go to stderr; on failure it exits non-zero with the reason.
# Environment: VEIL_CONCRETE_VENV (venv folder), VEIL_PYTHON (interpreter,
# default python3; concrete-python 2.10.0 has wheels for CPython 3.8-3.12 on
# x86_64 Linux).
set -euo pipefail

home="${HOME:-$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6)}"
case "${1:-}" in
  "")
    pins=("concrete-python==2.10.0" "numpy==1.26.4" "setuptools==75.3.0")
    venv="${VEIL_CONCRETE_VENV:-${home:-/tmp}/.cache/veil/concrete-venv}"
    check='from concrete import fhe; import numpy' ;;
  ml)
    pins=("concrete-ml==1.9.0" "concrete-python==2.10.0" "torch==2.3.1" "brevitas==0.10.2"
          "numpy==1.26.4" "setuptools==75.3.0" "h5py")
    venv="${VEIL_CONCRETE_VENV:-${home:-/tmp}/.cache/veil/concrete-ml-venv}"
    check='import concrete.ml, torch, brevitas, h5py; from concrete.ml.torch.compile import compile_brevitas_qat_model' ;;
  *) echo "setup-concrete: unknown argument '$1' (nothing, or ml)" >&2; exit 2 ;;
esac
py="${VEIL_PYTHON:-python3}"

die() { echo "setup-concrete: $*" >&2; exit 1; }
# shellcheck source=scripts/venv-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../venv-lib.sh"

pyver="$(venv_python_version)"
hash="$( { printf '%s\n' "${pins[@]}"; echo "python $pyver"; } | sha256sum | cut -d' ' -f1)"
stamp="$venv/.veil-concrete.sha256"

if venv_ready "$hash"; then
  echo "$venv"
  exit 0
fi

venv_lock
# Someone else may have finished the install while we waited.
if venv_ready "$hash"; then
  echo "$venv"
  exit 0
fi
venv_create setup-concrete
echo "setup-concrete: installing ${pins[*]} into $venv (first time: minutes, 1 to 4 GB)" >&2
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
  "${pins[@]}" >&2 \
  || die "pip install ${pins[*]} failed (is PyPI reachable? is there a wheel for Python $pyver on $(uname -m)?); venv left at $venv without stamp (the next run rebuilds it)"
"$venv/bin/python" -c "$check" >&2 \
  || die "${pins[0]} installed but does not import; see the error above"
echo "$hash" >"$stamp"
echo "setup-concrete: ready: $venv" >&2
echo "$venv"
