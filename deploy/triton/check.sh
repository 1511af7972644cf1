#!/usr/bin/env bash
# ctest triton_deploy_check: runs check.py with PyYAML from the Triton venv
# (scripts/setup-triton.sh, whose reason goes to stderr when it cannot make
# it) or the system's python3; exit 77 (skipped) when neither has it. A setup
# failure that is not a skip (a status other than 77: under
# VEIL_REQUIRE_VENVS=1, scripts/venv-lib.sh venv_fail_status) fails.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(bash "$here/../../scripts/setup-triton.sh")"
rc=$?
if [ "$rc" -eq 0 ] && [ -x "$venv/bin/python" ]; then
  exec "$venv/bin/python" "$here/check.py"
fi
if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
  echo "FAILED: scripts/setup-triton.sh could not make the Triton venv (exit $rc, reason above)"
  exit 1
fi
if python3 -c 'import yaml' 2>/dev/null; then
  exec python3 "$here/check.py"
fi
echo "SKIPPED: no PyYAML (scripts/setup-triton.sh could not make its venv, and python3 has no yaml)"
exit 77
