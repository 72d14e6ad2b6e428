#!/usr/bin/env bash
# Builds a real kube-apiserver (1.20.2) from Debian bookworm's `kubernetes` source package, for the
# Kubernetes integration tests, and caches it outside the repo (built only once):
#   ${HML_CACHE:-$HOME/.cache/hypermodel}/kube-apiserver-1.20.2
# The build is scripts/build-kube-node.sh's (which builds the whole test node; `make test-infra`
# runs that one); this builds the API server alone, about 8 minutes on 2 cores.
set -euo pipefail
HML_BUILD_LOG_NAME=build-kube-apiserver exec "$(cd "$(dirname "$0")" && pwd)/build-kube-node.sh" kube-apiserver
