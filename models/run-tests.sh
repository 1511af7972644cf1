#!/usr/bin/env bash
# Runs the exporter tests (models/tests, pytest marker `exporter`) in the
# cached venv of scripts/setup-python.sh, installing it on first use.
# When the venv cannot be made, exits with setup-python.sh's status, saying
# why: 77 (CTest: skipped), or 1 (failed) under VEIL_REQUIRE_VENVS=1 (CI),
# the rule of scripts/venv-lib.sh venv_fail_status.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(bash "$here/../scripts/setup-python.sh")"
rc=$?
if [ "$rc" -ne 0 ]; then
  if [ "$rc" -eq 77 ]; then
    echo "models/run-tests.sh: SKIPPED: the Python venv could not be set up (see the" \
         "setup-python message above; PyPI unreachable?)"
  else
    echo "models/run-tests.sh: FAILED: the Python venv could not be set up (see the" \
         "setup-python message above)"
  fi
  exit "$rc"
fi
cd "$here" || exit 1
exec "$venv/bin/python" -m pytest -m exporter -p no:cacheprovider -rs tests "$@"
