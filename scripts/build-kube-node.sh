#!/usr/bin/env bash
# Builds the binaries of a real single-node Kubernetes (1.20.2) for the Kubernetes tests, from
# Debian bookworm's `kubernetes` source package (Go dependencies vendored) in GOPATH mode, and
# caches them outside the repo:
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kube-apiserver-1.20.2
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kube-controller-manager-1.20.2
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kube-scheduler-1.20.2
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kubelet-1.20.2     (dockershim: talks to dockerd)
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kube-proxy-1.20.2  (iptables mode: Service IPs)
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/pause-1.20.2       (build/pause/linux/pause.c, static)
#
#   scripts/build-kube-node.sh                  # every one that is missing
#   scripts/build-kube-node.sh kube-apiserver   # only these (scripts/build-kube-apiserver.sh)
#
# Only the missing ones are built, the Go ones in one `go build` so that the packages they share
# compile once, with the version in the ldflags (or /version says v0.0.0). A clean build of all
# five took 12 minutes on 2 busy cores (load 7), 4.7 minutes for the four beside a cached
# kube-apiserver on a quieter machine; kube-apiserver alone takes about 8. Debian bookworm; root
# only for apt (deb-src entries, build packages).
set -euo pipefail

VERSION=1.20.2
CACHE=${HML_CACHE:-$HOME/.cache/hypermodel}
ALL=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy pause)
LOG_NAME=${HML_BUILD_LOG_NAME:-build-kube-node}

log() { echo "$LOG_NAME: $*" >&2; }

wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=("${ALL[@]}")
missing=()
need_pause=0
for b in "${wanted[@]}"; do
  case " ${ALL[*]} " in
    *" $b "*) ;;
    *) log "unknown binary '$b' (one of: ${ALL[*]})"; exit 2 ;;
  esac
  [ -x "$CACHE/$b-$VERSION" ] && continue
  if [ "$b" = pause ]; then need_pause=1; else missing+=("$b"); fi
done
if [ ${#missing[@]} -eq 0 ] && [ "$need_pause" = 0 ]; then
  exit 0
fi

as_root() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to $1 (or build as root once: the binaries are cached for every later run)"
    exit 1
  fi
}

export DEBIAN_FRONTEND=noninteractive
need=()
for p in golang-go rsync make gcc libc6-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done

# Source entries for bookworm and bookworm-security (the kubernetes source has security updates).
SRC_LIST=/etc/apt/sources.list.d/hypermodel-deb-src.sources
updated=0
if [ ! -f "$SRC_LIST" ]; then
  as_root "add deb-src entries ($SRC_LIST)"
  cat >"$SRC_LIST" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
  updated=1
fi
if [ ${#need[@]} -gt 0 ]; then
  as_root "install ${need[*]}"
  [ "$updated" = 1 ] || apt-get update -qq
  log "installing ${need[*]}"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/kube-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
started=$SECONDS

log "downloading the kubernetes source package"
apt-get source --download-only -qq kubernetes >/dev/null
orig=$(ls kubernetes_*.orig.tar.* | head -n1)
log "unpacking $orig"
mkdir src-tree
tar -xf "$orig" -C src-tree --strip-components=1

# The pod sandbox ("pause") process: a static C binary, so its image needs nothing else.
if [ "$need_pause" = 1 ]; then
  gcc -Os -static -Wall -Werror -DVERSION="v$VERSION-hypermodel" -o "$WORK/pause" \
    src-tree/build/pause/linux/pause.c
  strip "$WORK/pause"
  mv "$WORK/pause" "$CACHE/pause-$VERSION.tmp"
  mv "$CACHE/pause-$VERSION.tmp" "$CACHE/pause-$VERSION"
  log "cached $CACHE/pause-$VERSION"
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

# GOPATH mode: the tree must live at $GOPATH/src/k8s.io/kubernetes.
export GOPATH="$WORK/gopath"
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$WORK/src-tree" "$GOPATH/src/k8s.io/kubernetes"
export GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOCACHE="$WORK/gocache"

cd "$GOPATH/src/k8s.io/kubernetes"
log "generating the OpenAPI definitions"
make gen_openapi >"$WORK/gen_openapi.log" 2>&1 || {
  tail -n 40 "$WORK/gen_openapi.log" >&2
  exit 1
}

pkg=k8s.io/kubernetes/vendor/k8s.io
ldflags=""
for v in "$pkg/component-base/version" "$pkg/client-go/pkg/version"; do
  ldflags+=" -X $v.gitVersion=v$VERSION -X $v.gitMajor=1 -X $v.gitMinor=20"
  ldflags+=" -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
done
packages=()
for b in "${missing[@]}"; do
  packages+=("k8s.io/kubernetes/cmd/$b")
done
log "building ${missing[*]} (several minutes)"
mkdir "$WORK/bin"
build_start=$SECONDS
go build -o "$WORK/bin/" -ldflags "-s -w$ldflags" "${packages[@]}"
log "go build took $((SECONDS - build_start))s"

for b in "${missing[@]}"; do
  "$WORK/bin/$b" --version
  # Move into place atomically so an interrupted build never leaves a half-written binary.
  mv "$WORK/bin/$b" "$CACHE/$b-$VERSION.tmp"
  mv "$CACHE/$b-$VERSION.tmp" "$CACHE/$b-$VERSION"
  log "cached $CACHE/$b-$VERSION"
done
log "done in $((SECONDS - started))s"
