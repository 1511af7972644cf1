#!/usr/bin/env bash
# Creates or updates the Python virtual environment used by models/ (the
# Brevitas exporter, the sample-model training scripts and their tests).
#
#   VENV=$(bash scripts/setup-python.sh)     # prints the venv path on stdout
#
# The venv lives outside the clone, at ${VEIL_VENV:-$HOME/.cache/veil/venv},
# so every clone and CI run shares it. pip runs only when the stamp file in
# the venv does not match the hash of models/requirements.txt and the Python
# version, and then into a venv made anew (no package of an older requirements
# file stays); otherwise this script returns at once. Progress and errors go to
# stderr; on failure it says why and exits 77, which models/run-tests.sh
# passes on to CTest as "skipped", or 1 under VEIL_REQUIRE_VENVS=1 (CI), a
# failure (scripts/venv-lib.sh venv_fail_status).
# Environment: VEIL_VENV (venv folder), VEIL_PYTHON (interpreter, default
# python3), VEIL_REQUIRE_VENVS (1: a failure is not a skip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$here/models/requirements.txt"
home="${HOME:-$(getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6)}"
venv="${VEIL_VENV:-${home:-/tmp}/.cache/veil/venv}"
py="${VEIL_PYTHON:-python3}"

# Exits 77 (tests: skipped) or, under VEIL_REQUIRE_VENVS=1, 1: venv_fail_status.
die() { echo "setup-python: $*" >&2; exit "$(venv_fail_status)"; }
# shellcheck source=scripts/venv-lib.sh
. "$here/scripts/venv-lib.sh"

[ -f "$req" ] || die "missing $req"
pyver="$(venv_python_version)"
hash="$( { cat "$req"; echo "python $pyver"; } | sha256sum | cut -d' ' -f1)"
stamp="$venv/.veil-requirements.sha256"

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
venv_create setup-python
echo "setup-python: installing $req into $venv (first time: several minutes, ~3 GB for torch)" >&2
"$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
  -r "$req" >&2 \
  || die "pip install -r $req failed (is PyPI reachable?); venv left at $venv without stamp (the next run rebuilds it)"
"$venv/bin/python" -c 'import torch, brevitas, h5py, numpy, sklearn, pytest' >&2 \
  || die "packages installed but do not import; see the error above"
echo "$hash" >"$stamp"
echo "setup-python: ready: $venv" >&2
echo "$venv"
