#!/usr/bin/env bash
# Installs the system packages and binaries the test suite needs (idempotent, root on Debian).
# Python packages come from the project's dev extra; this covers everything outside PyPI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

APT_PACKAGES=(etcd-server chromium wrk rsync golang-go git openssl)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test-infra: need root to apt-get install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A real kube-apiserver for the Kubernetes tests (built once, cached outside the repo).
if [ -x "$here/build-kube-apiserver.sh" ]; then
  "$here/build-kube-apiserver.sh"
fi
