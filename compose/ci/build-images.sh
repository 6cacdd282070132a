#!/usr/bin/env bash
# Build every image the CI stack needs without pulling from any registry.
#
#   DOCKER_HOST=unix://... compose/ci/build-images.sh WORKDIR
#
# 1. base: a minimal Debian bookworm made with debootstrap from the mirror apt already
#    uses (cached as a tarball under ~/.cache/faultline/), brought in with `docker import`.
# 2. stand-ins for the public images: postgres and redis from Debian's packages (already in
#    the base), toxiproxy = `faultline proxy` behind toxiproxy's command line.
# 3. the app image from compose/Dockerfile, with wheels built on the host (no download
#    inside any build).
# Prints the `export FAULTLINE_*_IMAGE=...` lines for the stack.
set -euo pipefail
work="${1:?WORKDIR}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
DOCKER="${DOCKER:-/usr/bin/docker}"
PY="${PY:-$repo/.venv/bin/python}"
PREFIX="${FAULTLINE_CI_IMAGE_PREFIX:-faultline-ci}"
# The base holds what every stand-in needs, so no build step has to reach the network.
PACKAGES="python3,python3-pip,postgresql-15,redis-server,redis-tools,procps"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/faultline"
key="$(printf '%s|%s|v1' bookworm "$PACKAGES" | sha1sum | cut -c1-12)"
tarball="$cache/debian-bookworm-$key.tar"
log() { printf '[build-images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m="$(awk '$1=="deb"{for(i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  echo "${m:?no Debian mirror found in the apt sources}"
}

make_rootfs_tarball() {
  local root="$work/rootfs"
  rm -rf "$root"
  log "debootstrap bookworm (minbase + $PACKAGES)"
  debootstrap --foreign --variant=minbase --include="$PACKAGES" bookworm "$root" \
    "$(debian_mirror)" >"$work/debootstrap.log" 2>&1
  # Installing postgresql/redis in the chroot must not start them (on the host!).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  chroot "$root" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/var/lib/postgresql/15/main
  mkdir -p "$cache"
  tar -C "$root" --numeric-owner -cf "$tarball.part" .
  mv "$tarball.part" "$tarball"
  rm -rf "$root"
}

if [ ! -s "$tarball" ]; then
  make_rootfs_tarball
else
  log "base rootfs from cache ($tarball)"
fi
log "docker import -> $PREFIX/base:bookworm"
"$DOCKER" import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  "$tarball" "$PREFIX/base:bookworm" >/dev/null

build() { # tag dir [docker build args...]
  local tag="$1" dir="$2"; shift 2
  log "docker build -> $tag"
  "$DOCKER" build -q --network host -t "$tag" "$@" "$dir" >/dev/null
}

build "$PREFIX/postgres:15" "$here/images/postgres" --build-arg "BASE_IMAGE=$PREFIX/base:bookworm"
build "$PREFIX/redis:7" "$here/images/redis" --build-arg "BASE_IMAGE=$PREFIX/base:bookworm"

# The app image: a staged context with only what compose/Dockerfile copies, plus wheels.
ctx="$work/app-context"
rm -rf "$ctx"; mkdir -p "$ctx/compose/wheelhouse"
(cd "$repo" && tar --exclude=__pycache__ --exclude='*.pyc' -cf - pyproject.toml README.md \
  resilience faultline payments compose/Dockerfile) | tar -C "$ctx" -xf -
log "pip wheel (host) -> wheelhouse"
# async-timeout: redis needs it below Python 3.11.3 (Debian's is 3.11.2), the host may not.
"$PY" -m pip wheel -q --wheel-dir "$ctx/compose/wheelhouse" "$ctx[payments,proxy]" \
  "async-timeout>=4.0.3" \
  >"$work/pip-wheel.log" 2>&1 || { tail -20 "$work/pip-wheel.log" >&2; exit 1; }
build "$PREFIX/payments:latest" "$ctx" -f "$ctx/compose/Dockerfile" \
  --build-arg "BASE_IMAGE=$PREFIX/base:bookworm"
build "$PREFIX/toxiproxy:latest" "$here/images/toxiproxy" \
  --build-arg "APP_IMAGE=$PREFIX/payments:latest"

cat <<OUT
export FAULTLINE_POSTGRES_IMAGE=$PREFIX/postgres:15
export FAULTLINE_REDIS_IMAGE=$PREFIX/redis:7
export FAULTLINE_TOXIPROXY_IMAGE=$PREFIX/toxiproxy:latest
export FAULTLINE_APP_IMAGE=$PREFIX/payments:latest
OUT
