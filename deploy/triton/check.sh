#!/usr/bin/env bash
# ctest triton_deploy_check: runs check.py with PyYAML from the Triton venv
# (scripts/setup-triton.sh) or the system's python3; exit 77 (skipped) when
# neither has it.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if venv="$(bash "$here/../../scripts/setup-triton.sh" 2>/dev/null)" && [ -x "$venv/bin/python" ]; then
  exec "$venv/bin/python" "$here/check.py"
fi
if python3 -c 'import yaml' 2>/dev/null; then
  exec python3 "$here/check.py"
fi
echo "SKIPPED: no PyYAML (scripts/setup-triton.sh could not make its venv, and python3 has no yaml)"
exit 77
