# shellcheck shell=bash
# Sourced by scripts/setup-python.sh, scripts/setup-triton.sh and
# scripts/peers/setup-concrete.sh: the steps of a cached venv they share.
# The caller sets py (interpreter), venv (folder), stamp (file in the venv
# holding the hash of what was installed) and defines die() (its own message
# prefix) before calling these; venv_ready needs pyver too.
# shellcheck disable=SC2154 # py, venv, stamp, pyver: set by the caller
#
# Several clones share one venv folder (its hash keys what is in it): the lock
# is $venv.lock beside it, the same file for every clone.

# The exit status of a failed setup, the one rule for what a test does when
# its venv cannot be made: the test wrappers (models/run-tests.sh,
# deploy/triton/check.sh, tests/test_triton.c through host/triton/launch.c)
# pass it on, 77 being CTest's "skipped". 77 unless VEIL_REQUIRE_VENVS=1
# (.ci/run sets it): there a venv that should have installed and did not fails
# the tests (1) instead of skipping them. A venv that cannot exist on this
# machine at all (no wheel for it) exits 77 either way: venv_unavailable.
venv_fail_status() {
  if [ "${VEIL_REQUIRE_VENVS:-0}" = 1 ]; then echo 1; else echo 77; fi
}

# The venv cannot exist here (e.g. no wheel for this CPU or C library):
# says why ($1: the message prefix, $2: the reason) and exits 77, a skip
# even under VEIL_REQUIRE_VENVS=1.
venv_unavailable() {
  echo "$1: $2" >&2
  exit 77
}

# Prints the version X.Y.Z of interpreter $1.
py_version() {
  "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'
}

# Prints the interpreter's version X.Y.Z (part of every venv's hash).
venv_python_version() {
  command -v "$py" >/dev/null 2>&1 || die "no '$py' interpreter on PATH (install python3 and python3-venv)"
  py_version "$py" || die "'$py' does not run"
}

# True when the venv runs $pyver (the interpreter it was hashed with: not one
# made by another python, nor one whose base interpreter changed under it)
# and its stamp holds hash $1: nothing to install.
venv_ready() {
  [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$1" ] &&
    [ "$(py_version "$venv/bin/python" 2>/dev/null)" = "$pyver" ]
}

# One installer at a time (ctest -j may start several users of a venv, and
# other clones share it): holds $venv.lock on descriptor 9 until the caller
# exits; $1, when given, is the most seconds to wait for it.
# shellcheck disable=SC2120 # $1 is optional
venv_lock() {
  mkdir -p "$(dirname "$venv")" || die "cannot create $(dirname "$venv")"
  exec 9>"$venv.lock" || die "cannot open lock file $venv.lock"
  command -v flock >/dev/null 2>&1 || return 0
  if [ -n "${1:-}" ]; then
    flock -w "$1" 9 || die "another install held $venv.lock for ${1}s"
  else
    flock 9 || die "cannot lock $venv.lock"
  fi
}

# Makes the venv anew with $py, from scratch ($1: the prefix of the progress
# line); called under venv_lock when venv_ready is false. Whatever was there
# goes: packages of an older hash that the new requirements no longer name,
# a half install that was interrupted, a venv of another interpreter. The
# stamp, written by the caller once its install has succeeded, is what marks
# the venv complete; the venv is built in place, not in a temporary folder
# renamed into place, because a venv names its own path in bin/activate,
# pyvenv.cfg, every console script's #! line (bin/pip, bin/pytest) and the
# source paths of the .pyc files pip compiles, all of which a rename would
# leave pointing at the temporary folder.
venv_create() {
  echo "$1: creating venv $venv with $py ${pyver:-}" >&2
  # The stamp first, so that a removal cut short never leaves a stamped venv.
  rm -f "$stamp"
  rm -rf "$venv" || die "cannot remove the old venv $venv"
  "$py" -m venv "$venv" >&2 \
    || die "'$py -m venv $venv' failed (on Debian: apt-get install python3-venv)"
}
