"""Errors of the Kubernetes deploy: each names the object and carries the API server's own words."""

from __future__ import annotations

from ..errors import HypermodelError


class KubernetesError(HypermodelError):
    """Deploying to Kubernetes failed (no cluster, no access, or an object was rejected)."""


class ClusterUnreachableError(KubernetesError):
    """No kubeconfig, a bad context, or the API server did not answer."""


class RejectedError(KubernetesError):
    """The API server refused an object; ``status`` is the HTTP code, ``reason`` its Status reason."""

    def __init__(self, message: str, status: int, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
