#!/usr/bin/env bash
# Makes the offline base image of the container tests once: Debian bookworm (minbase) with
# python3, venv, pip, CA certificates and git, built by mmdebstrap from Debian's apt
# repositories and imported into the Docker engine, because no registry image can be pulled
# here. Skipped when the image exists; the rootfs tarball is cached too, so an emptied engine
# gets it back in seconds:
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/bookworm-py-1.tar
# Prints the image name. Needs a Docker engine (scripts/docker-up.sh) and, to build the
# tarball, mmdebstrap (root). The host's own CAs (/usr/local/share/ca-certificates, e.g. a
# proxy's) are added to the image, so that `pip install` inside a build trusts what the host
# trusts; the image is a test fixture, never pushed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

IMAGE=${HML_BASE_IMAGE:-hypermodel/bookworm-py:1}
CACHE=${HML_CACHE:-$HOME/.cache/hypermodel}
TARBALL="$CACHE/bookworm-py-1.tar"

log() { echo "base-image: $*" >&2; }

if [ -z "${DOCKER_HOST:-}" ]; then
  DOCKER_HOST=$("$here/docker-up.sh")
fi
export DOCKER_HOST

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi

if [ ! -s "$TARBALL" ]; then
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "mmdebstrap is not installed: apt-get install mmdebstrap (scripts/test-infra.sh does)"
    exit 1
  fi
  mkdir -p "$CACHE"
  start=$SECONDS
  log "building a bookworm rootfs with mmdebstrap (about a minute or two)"
  # the CA hook runs on the host, with the chroot's path as $1
  # shellcheck disable=SC2016
  mmdebstrap --variant=minbase --quiet \
    --include=python3,python3-venv,python3-pip,ca-certificates,git \
    --customize-hook='set -e; for c in /usr/local/share/ca-certificates/*.crt; do
        [ -f "$c" ] || continue; cp "$c" "$1/usr/local/share/ca-certificates/"; done
        chroot "$1" update-ca-certificates >/dev/null 2>&1' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$TARBALL.part.tar"
  mv "$TARBALL.part.tar" "$TARBALL"
  log "rootfs built in $((SECONDS - start))s: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

start=$SECONDS
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "mmdebstrap --variant=minbase bookworm + python3, python3-venv, python3-pip, ca-certificates, git" \
  "$TARBALL" "$IMAGE" >/dev/null
log "imported $IMAGE in $((SECONDS - start))s"
echo "$IMAGE"
