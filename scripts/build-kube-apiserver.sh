#!/usr/bin/env bash
# Builds a real kube-apiserver (1.20.2) from Debian bookworm's `kubernetes` source package, for the
# Kubernetes integration tests. The binary is cached outside the repo and built only once:
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kube-apiserver-1.20.2
# Debian bookworm; root only for apt (deb-src entries, build packages). A clean build takes
# about 8-10 minutes on 2 cores.
set -euo pipefail

VERSION=1.20.2
CACHE=${HML_CACHE:-$HOME/.cache/hypermodel}
TARGET="$CACHE/kube-apiserver-$VERSION"

if [ -x "$TARGET" ]; then
  exit 0
fi

log() { echo "build-kube-apiserver: $*" >&2; }

as_root() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to $1 (or build as root once: the binary is cached for every later run)"
    exit 1
  fi
}

export DEBIAN_FRONTEND=noninteractive
need=()
for p in golang-go etcd-server rsync make; do
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

log "downloading the kubernetes source package"
apt-get source --download-only -qq kubernetes >/dev/null
orig=$(ls kubernetes_*.orig.tar.* | head -n1)
log "unpacking $orig"
mkdir src-tree
tar -xf "$orig" -C src-tree --strip-components=1

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
log "building kube-apiserver (several minutes)"
go build -o "$WORK/kube-apiserver" -ldflags "-s -w$ldflags" k8s.io/kubernetes/cmd/kube-apiserver

"$WORK/kube-apiserver" --version
# Move into place atomically so an interrupted build never leaves a half-written binary.
mv "$WORK/kube-apiserver" "$TARGET.tmp"
mv "$TARGET.tmp" "$TARGET"
log "cached $TARGET"
