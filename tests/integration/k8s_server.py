"""A real Kubernetes API server for the deploy tests: etcd + kube-apiserver on loopback ports.

The kube-apiserver binary is built from Debian's kubernetes source package by
scripts/build-kube-apiserver.sh (cached at ~/.cache/hypermodel/kube-apiserver-1.20.2, or
$HML_KUBE_APISERVER). With HML_TEST_KUBECONFIG=1 the tests use the cluster of $KUBECONFIG
instead (kind, minikube...), so they run outside Debian too. Import the fixtures from here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, require_module, unavailable, wait_for_port

APISERVER_VERSION = "1.20.2"
READY_TIMEOUT = 120.0  # ~6 s on an idle 2-core machine; generous for a loaded CI runner


@dataclass
class Cluster:
    """How to reach the test cluster, plus a small admin client for checking what it holds."""

    kubeconfig: Path
    server: str
    external: bool = False
    namespaces: list[str] = field(default_factory=list)
    _api: Any = None

    @property
    def api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config

            cfg = client.Configuration()
            config.load_kube_config(
                config_file=str(self.kubeconfig), client_configuration=cfg, persist_config=False
            )
            self._api = client.ApiClient(cfg)
        return self._api

    def get(self, path: str) -> Any:
        """GET a path as a dict; None when the server says 404."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.call_api(
                path,
                "GET",
                header_params={"Accept": "application/json"},
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.api.call_api(
            path,
            "POST",
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )

    def new_namespace(self) -> str:
        name = f"hml-test-{uuid.uuid4().hex[:8]}"
        self.post("/api/v1/namespaces", {"metadata": {"name": name}})
        self.namespaces.append(name)
        return name

    def close(self) -> None:
        if self._api is not None:
            if self.external:  # a real cluster keeps what tests leave; the local one is thrown away
                for name in self.namespaces:
                    try:
                        self.api.call_api(
                            f"/api/v1/namespaces/{name}", "DELETE", auth_settings=["BearerToken"]
                        )
                    except Exception:
                        pass
            self._api.close()
            self._api = None


def apiserver_binary() -> Path | None:
    explicit = os.environ.get("HML_KUBE_APISERVER")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("HML_CACHE") or Path.home() / ".cache" / "hypermodel")
    candidate = cache / f"kube-apiserver-{APISERVER_VERSION}"
    return candidate if candidate.exists() else None


def _use_external() -> bool:
    return os.environ.get("HML_TEST_KUBECONFIG", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_module("kubernetes")
    if _use_external():
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            unavailable("HML_TEST_KUBECONFIG=1 needs KUBECONFIG to name the cluster's kubeconfig")
        cluster = Cluster(Path(kubeconfig), server="(from KUBECONFIG)", external=True)
        yield cluster
        cluster.close()
        return
    with _local_apiserver(tmp_path_factory.mktemp("k8s")) as cluster:
        yield cluster
        cluster.close()


class _local_apiserver:
    """etcd + kube-apiserver with token auth; stopped (and their data discarded) on exit."""

    def __init__(
        self, workdir: Path, extra_args: list[str] | None = None, users: tuple[str, ...] = ()
    ) -> None:
        self.workdir = workdir
        self.extra_args = list(extra_args or [])  # more kube-apiserver flags (the test node's)
        self.users = users  # more token users (system:masters too), for the node's components
        self.tokens: dict[str, str] = {}
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Cluster:
        binary = apiserver_binary()
        if binary is None or not os.access(binary, os.X_OK):
            unavailable(
                f"no kube-apiserver {APISERVER_VERSION} binary (build it with "
                "scripts/build-kube-apiserver.sh, or set HML_TEST_KUBECONFIG=1 and KUBECONFIG)"
            )
        etcd = shutil.which("etcd")
        openssl = shutil.which("openssl")
        if etcd is None or openssl is None:
            unavailable("etcd and openssl are needed for the test kube-apiserver (make test-infra)")
        try:
            return self._start(str(binary), etcd, openssl)
        except BaseException:
            self.__exit__()
            raise

    def _start(self, binary: str, etcd: str, openssl: str) -> Cluster:
        w = self.workdir
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                etcd,
                "--name=hml-test",
                f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=hml-test={peer_url}",
            ],
        )
        wait_for_port(etcd_port, self.procs[-1], timeout=30)

        subprocess.run(
            [openssl, "genrsa", "-out", str(w / "sa.key"), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            [openssl, "rsa", "-in", str(w / "sa.key"), "-pubout", "-out", str(w / "sa.pub")],
            check=True,
            capture_output=True,
        )
        self.tokens = {user: secrets.token_hex(16) for user in ("admin", *self.users)}
        token = self.tokens["admin"]
        (w / "tokens.csv").write_text(
            "".join(f"{t},{user},{user},system:masters\n" for user, t in self.tokens.items())
        )
        certs = w / "certs"
        certs.mkdir()
        self._spawn(
            "kube-apiserver",
            [
                binary,
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={certs}",
                f"--token-auth-file={w / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={w / 'sa.pub'}",
                f"--service-account-signing-key-file={w / 'sa.key'}",
                "--service-cluster-ip-range=10.0.0.0/24",
                *self.extra_args,
            ],
        )
        server = f"https://127.0.0.1:{api_port}"
        self._wait_ready(server, token, certs / "apiserver.crt")
        kubeconfig = w / "kubeconfig"
        kubeconfig.write_text(_kubeconfig(server, token, certs / "apiserver.crt"))
        return Cluster(kubeconfig, server)

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.workdir / f"{name}.log", "wb") as log:  # the child keeps its own handle
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def _wait_ready(self, server: str, token: str, ca: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            proc = self.procs[-1]
            if proc.poll() is not None:
                tail = (self.workdir / "kube-apiserver.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"kube-apiserver exited ({proc.returncode}):\n{tail}")
            if ca.exists():
                try:
                    context = ssl.create_default_context(cafile=str(ca))
                    request = urllib.request.Request(
                        f"{server}/readyz", headers={"Authorization": f"Bearer {token}"}
                    )
                    with urllib.request.urlopen(request, context=context, timeout=5) as r:
                        if r.status == 200 and r.read().strip() == b"ok":
                            return
                except (OSError, urllib.error.URLError, ssl.SSLError) as exc:
                    last = str(exc)
            time.sleep(0.25)
        raise TimeoutError(f"kube-apiserver at {server} not ready after {READY_TIMEOUT}s: {last}")

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()


def _kubeconfig(server: str, token: str, ca: Path) -> str:
    # JSON is valid YAML, and needs no YAML writer here.
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "hml-test",
                    "cluster": {"server": server, "certificate-authority": str(ca)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "hml-test",
                    "context": {"cluster": "hml-test", "user": "admin", "namespace": "default"},
                }
            ],
            "current-context": "hml-test",
        },
        indent=2,
    )


@pytest.fixture
def k8s_namespace(k8s_cluster: Cluster) -> str:
    """A fresh namespace per test, so tests never see each other's objects."""
    return k8s_cluster.new_namespace()
