#!/usr/bin/env bash
# `make test-compose`: the containerised payment stack on a real, private Docker engine.
#
# Installs Debian's docker.io/docker-compose/debootstrap if missing, starts dockerd with
# every file under a temp folder (no iptables, no bridge: host networking only, all on
# 127.0.0.1), builds the images without pulling (debootstrap base, stand-ins for postgres,
# redis and toxiproxy, the app image), runs the compose tests and drills (tests/compose:
# the launcher, its container controls, drills through the drill engine on one stack, and
# `faultline run --target compose --bugs ...` catching a bug on a fresh one), and removes
# the containers, the images and the engine at the end, also on failure or Ctrl-C.
#
# Env: FAULTLINE_COMPOSE_KEEP_RUN=DIR keeps the run directory (logs, histories) in DIR.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
t0=$(date +%s)
log() { printf '[test-compose %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - t0 ))" "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  echo "test-compose: needs root (dockerd, debootstrap)" >&2
  exit 4
fi
work="$(mktemp -d /tmp/faultline-compose.XXXXXX)"
engine="$work/engine"
export DOCKER=/usr/bin/docker

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  log "cleanup (exit $rc)"
  if [ -S "$engine/docker.sock" ]; then
    export DOCKER_HOST="unix://$engine/docker.sock"
    ids="$("$DOCKER" ps -aq 2>/dev/null || true)"
    [ -n "$ids" ] && "$DOCKER" rm -f -v $ids >/dev/null 2>&1 || true
    # Children before parents: a few passes until nothing is left.
    for _ in 1 2 3 4; do
      imgs="$("$DOCKER" images -aq 2>/dev/null | sort -u || true)"
      [ -z "$imgs" ] && break
      "$DOCKER" rmi -f $imgs >/dev/null 2>&1 || true
    done
    log "left in the engine: $("$DOCKER" ps -aq 2>/dev/null | wc -l) containers, $("$DOCKER" images -aq 2>/dev/null | wc -l) images"
  fi
  "$here/dockerd.sh" stop "$engine" || true
  if [ -n "${FAULTLINE_COMPOSE_KEEP_RUN:-}" ] && [ -d "$work/run" ]; then
    mkdir -p "$FAULTLINE_COMPOSE_KEEP_RUN" && cp -a "$work/run/." "$FAULTLINE_COMPOSE_KEEP_RUN/" || true
  fi
  rm -rf "$work"
  log "done: $rc after $(( $(date +%s) - t0 ))s"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The CI stack's ports (compose/ci/compose.env, and the host-network proxy config that
# ships with the payments profile) must be free.
busy=""
for port in $(grep -hoE '(=|:)2[0-9]{4}' compose/ci/compose.env payments/drill/compose/toxiproxy.host.json | tr -d '=:' | sort -u); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy="$busy $port"; fi
done
if [ -n "$busy" ]; then
  echo "test-compose: ports already in use on 127.0.0.1:$busy" >&2
  exit 4
fi

[ -x .venv/bin/python ] || scripts/bootstrap.sh
log "starting dockerd under $engine"
eval "$("$here/dockerd.sh" start "$engine")"
log "engine up: $("$DOCKER" version --format '{{.Server.Version}}')"
eval "$("$here/build-images.sh" "$work")"
log "images built"

export FAULTLINE_COMPOSE=1 FAULTLINE_COMPOSE_HOST_NETWORK=1
set -a; . "$here/compose.env"; set +a   # the CI stack's ports (host networking)
# docker-compose v1 from Debian: the engine is 20.10 (API 1.41), the CLI in step with it.
export FAULTLINE_COMPOSE_CLI="${FAULTLINE_COMPOSE_CLI:-docker-compose}"
export FAULTLINE_COMPOSE_RUN_DIR="$work/run"
export FAULTLINE_COMPOSE_PROJECT="faultline-ci"
log "compose tests and drills (tests/compose)"
.venv/bin/python -m pytest -p no:cacheprovider -q -o addopts="-ra" --durations=0 tests/compose
log "compose tests and drills passed"
