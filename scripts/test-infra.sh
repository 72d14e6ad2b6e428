#!/usr/bin/env bash
# Installs the system packages and binaries the test suite needs (idempotent, root on Debian).
# Python packages come from the project's dev extra; this covers everything outside PyPI.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# docker.io and mmdebstrap: a local Docker engine and the offline base image of the container tests
# containernetworking-plugins, iptables, conntrack: the pod network and Service IPs of the test node
APT_PACKAGES=(etcd-server chromium wrk rsync golang-go git openssl docker.io mmdebstrap
  containernetworking-plugins iptables conntrack)
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

# A real single-node Kubernetes for the Kubernetes tests: kube-apiserver, controller-manager,
# scheduler, kubelet, kube-proxy and pause (built once in one go build, cached outside the repo).
"$here/build-kube-node.sh"

# A Docker engine (found, or started in the background as root) and the offline base image of
# the container tests (tests/integration/test_image.py), made once and cached. Where Docker
# cannot run, those tests skip; under CI (CI=true) they must run, so this fails here already.
if docker_host=$("$here/docker-up.sh") && DOCKER_HOST="$docker_host" "$here/base-image.sh" >/dev/null; then
  echo "test-infra: Docker engine at $docker_host with $(DOCKER_HOST="$docker_host" "$here/base-image.sh")" >&2
else
  case "${CI:-}" in
    1 | true | TRUE | True | yes) echo "test-infra: no Docker engine or base image under CI" >&2; exit 1 ;;
    *) echo "test-infra: warning: no Docker engine or base image; the container tests will skip" >&2 ;;
  esac
fi
