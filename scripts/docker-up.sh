#!/usr/bin/env bash
# Finds a Docker engine for the container tests, or starts a private one; prints its DOCKER_HOST.
#
#   export DOCKER_HOST=$(scripts/docker-up.sh)
#
# In order: $DOCKER_HOST if it answers, the private engine if it already runs, the default
# engine (/var/run/docker.sock) if it answers; otherwise (root, Debian's docker.io) it starts
#   dockerd --data-root $CACHE/docker --host unix://$CACHE/docker-run/docker.sock
#           --iptables=false --bridge=none
# in the background, logging to $CACHE/docker-run/dockerd.log, and waits until it answers.
# $CACHE is ${HML_CACHE:-$HOME/.cache/hypermodel}. Without iptables and a bridge, containers
# run with --network none or --network host only (builds use --network host).
set -euo pipefail

CACHE=${HML_CACHE:-$HOME/.cache/hypermodel}
RUN_DIR="$CACHE/docker-run"
SOCK="$RUN_DIR/docker.sock"
OURS="unix://$SOCK"
LOG="$RUN_DIR/dockerd.log"
WAIT=${HML_DOCKER_WAIT:-60}

log() { echo "docker-up: $*" >&2; }

answers() { DOCKER_HOST="$1" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
  log "no docker client: apt-get install docker.io (or run scripts/test-infra.sh as root)"
  exit 1
fi

if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
  echo "$DOCKER_HOST"
  exit 0
fi
if [ -S "$SOCK" ] && answers "$OURS"; then
  echo "$OURS"
  exit 0
fi
if [ -z "${DOCKER_HOST:-}" ] && [ -S /var/run/docker.sock ] && answers unix:///var/run/docker.sock; then
  echo "unix:///var/run/docker.sock"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "no Docker engine answers and dockerd is not installed: apt-get install docker.io"
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  log "no Docker engine answers and starting dockerd needs root (or point DOCKER_HOST at one)"
  exit 1
fi

mkdir -p "$CACHE/docker" "$RUN_DIR"
pidfile="$RUN_DIR/docker.pid"
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  log "dockerd (pid $(cat "$pidfile")) runs but does not answer yet; waiting"
else
  rm -f "$SOCK" "$pidfile"
  log "starting dockerd (log $LOG)"
  # setsid: the engine outlives this script and the test session that called it
  setsid dockerd \
    --data-root "$CACHE/docker" \
    --exec-root "$RUN_DIR/exec" \
    --host "$OURS" \
    --pidfile "$pidfile" \
    --iptables=false \
    --bridge=none \
    >>"$LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + WAIT))
until answers "$OURS"; do
  if [ $SECONDS -ge $deadline ]; then
    log "dockerd did not answer on $SOCK within ${WAIT}s; the end of $LOG:"
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "dockerd $(DOCKER_HOST="$OURS" docker version --format '{{.Server.Version}}') answers on $SOCK"
echo "$OURS"
