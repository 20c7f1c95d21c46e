#!/usr/bin/env bash
# Installs Microsoft PICT for the covering-array bench (BENCHMARKS.md section 4):
# PyPI's `pypict` (a Python binding that carries PICT built as a library), pip-installed
# into its own venv, bench/.venv/pict (gitignored). `cargo bench -p hil-oracle --bench
# covering` then runs PICT beside our generator on every model; without this venv it
# prints "PICT not installed" in PICT's columns.
#
#   bench/pict.sh            install (or check) pypict, then run PICT once on a 3^4 model
#
# pypict's newest release (0.3.0) ships wheels for CPython 3.7 to 3.10 only, and its only
# source release (0.1.0) does not build, so the venv needs a CPython <= 3.10: PICT_PYTHON
# if set, else a python3.10 .. python3.7 on PATH that runs, else one under `pyenv root`/versions.
# bench/server.sh recreates bench/.venv when its aiosmtpd is missing, which removes this
# venv too: run this script again after it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${PICT_VENV:-$root/bench/.venv/pict}
PYPICT_VERSION=0.3.0

find_python() {
  if [ -n "${PICT_PYTHON:-}" ]; then
    echo "$PICT_PYTHON"
    return
  fi
  local v p
  for v in 3.10 3.9 3.8 3.7; do
    if p=$(command -v "python$v") && "$p" -c "" 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  local pyroot=${PYENV_ROOT:-$HOME/.pyenv}
  if command -v pyenv >/dev/null 2>&1; then
    pyroot=$(pyenv root)
  fi
  for v in 3.10 3.9 3.8 3.7; do
    for p in "$pyroot"/versions/"$v".*/bin/python"$v"; do
      if [ -x "$p" ]; then
        echo "$p"
        return
      fi
    done
  done
  return 1
}

if ! "$venv/bin/python" -c "import pypict, sys; sys.exit(pypict.__version__ != '$PYPICT_VERSION')" 2>/dev/null; then
  py=$(find_python) || {
    echo "pict.sh: pypict $PYPICT_VERSION needs CPython 3.7..3.10 (none found; set PICT_PYTHON)" >&2
    exit 1
  }
  echo "pict.sh: installing pypict $PYPICT_VERSION into $venv with $py" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "pypict==$PYPICT_VERSION"
fi
model=$(mktemp)
trap 'rm -f "$model"' EXIT
printf 'a: 0, 1, 2\nb: 0, 1, 2\nc: 0, 1, 2\nd: 0, 1, 2\n' >"$model"
"$venv/bin/python" "$root/harness/oracle/benches/pict.py" "$model" 2 >/dev/null
echo "pict.sh: PICT ready: $venv/bin/python $root/harness/oracle/benches/pict.py MODEL ORDER" >&2
