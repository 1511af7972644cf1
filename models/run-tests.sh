#!/usr/bin/env bash
# Runs the exporter tests (models/tests, pytest marker `exporter`) in the
# cached venv of scripts/setup-python.sh, installing it on first use.
# Exit 77 (CTest: skipped) when the venv cannot be created, saying why.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if ! venv="$(bash "$here/../scripts/setup-python.sh")"; then
  echo "models/run-tests.sh: SKIPPED: the Python venv could not be set up (see the" \
       "setup-python message above; PyPI unreachable?)"
  exit 77
fi
cd "$here" || exit 1
exec "$venv/bin/python" -m pytest -m exporter -p no:cacheprovider -rs tests "$@"
