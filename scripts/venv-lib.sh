# Sourced by scripts/setup-python.sh, scripts/setup-triton.sh and
# scripts/peers/setup-concrete.sh: the steps of a cached venv they share.
# The caller sets py (interpreter), venv (folder), stamp (file in the venv
# holding the hash of what was installed) and defines die() (its own message
# prefix) before calling these.

# Prints the interpreter's version X.Y.Z (part of every venv's hash).
venv_python_version() {
  command -v "$py" >/dev/null 2>&1 || die "no '$py' interpreter on PATH (install python3 and python3-venv)"
  "$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' || die "'$py' does not run"
}

# True when the venv runs and its stamp holds hash $1: nothing to install.
venv_ready() {
  [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$1" ]
}

# One installer at a time (ctest -j may start several users of a venv): holds
# $venv.lock on descriptor 9 until the caller exits; $1, when given, is the
# most seconds to wait for it.
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

# Makes the venv anew when it has no working interpreter ($1: the prefix of
# the progress line), and clears the stamp: the install that follows writes
# it when it has succeeded.
venv_create() {
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "$1: creating venv $venv with $py ${pyver:-}" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv" >&2 \
      || die "'$py -m venv $venv' failed (on Debian: apt-get install python3-venv)"
  fi
  rm -f "$stamp"
}
