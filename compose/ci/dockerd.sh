#!/usr/bin/env bash
# Start or stop a private Docker engine whose every file lives under one folder.
#
#   compose/ci/dockerd.sh start DIR   # prints `export DOCKER_HOST=unix://DIR/docker.sock`
#   compose/ci/dockerd.sh stop DIR
#
# No iptables rules, no bridge, no ip forwarding: containers use host networking only.
# Installs Debian's docker.io (and docker-compose, debootstrap) when missing; needs root.
set -euo pipefail

ensure_packages() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  if ((${#need[@]})); then
    echo "dockerd.sh: installing ${need[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

start() {
  local dir="$1"
  ensure_packages
  mkdir -p "$dir/data" "$dir/exec"
  # setsid: the engine is not in our process group, so a Ctrl-C reaches the trap first
  # and the trap stops the engine in order.
  setsid dockerd \
    --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none \
    --containerd-namespace faultline-ci --containerd-plugins-namespace faultline-ci-plugins \
    --log-level warn >"$dir/dockerd.log" 2>&1 </dev/null &
  echo $! >"$dir/dockerd.launcher.pid"
  local i
  for i in $(seq 1 120); do
    if DOCKER_HOST="unix://$dir/docker.sock" /usr/bin/docker version >/dev/null 2>&1; then
      echo "export DOCKER_HOST=unix://$dir/docker.sock"
      return 0
    fi
    sleep 0.5
  done
  echo "dockerd.sh: the engine did not answer within 60 s; its log:" >&2
  tail -30 "$dir/dockerd.log" >&2
  return 1
}

stop() {
  local dir="$1" pid=""
  [ -f "$dir/dockerd.pid" ] && pid="$(cat "$dir/dockerd.pid")"
  [ -z "$pid" ] && [ -f "$dir/dockerd.launcher.pid" ] && pid="$(cat "$dir/dockerd.launcher.pid")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  # Whatever the engine left mounted under its folders (overlay layers, netns, shm).
  if [ -d "$dir" ]; then
    grep -F " $dir/" /proc/self/mounts | awk '{print $2}' | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  fi
}

case "${1:-}" in
  start) start "${2:?DIR}" ;;
  stop) stop "${2:?DIR}" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
