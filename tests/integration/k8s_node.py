"""A real single-node Kubernetes (1.20.2) for the cluster tests, started and torn down here.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a kubelet and kube-proxy, all
built from Debian's kubernetes source package by scripts/build-kube-node.sh (cached in
``${HML_CACHE:-~/.cache/hypermodel}``), on a Docker engine of the node's own:

- the kubelet's built-in dockershim runs the pods on a private ``dockerd`` started here
  (``$HML_CACHE/kube-node/docker`` as data root, so images and build layers persist between
  runs; ``--iptables=false --bridge=none`` like scripts/docker-up.sh). Its own engine, because
  a kubelet stops every pod container on its engine that it does not know, and so that it
  never garbage-collects the images of the other container tests;
- pod sandboxes use ``hypermodel/pause:1.20.2``, imported from the ``pause`` binary built from
  the same source (build/pause/linux/pause.c, static), since no registry can be reached;
- pods get their own network namespace and an IP on a Linux bridge (``hml-cni0``,
  10.244.0.0/24) from Debian's CNI plugins (containernetworking-plugins: bridge, host-local,
  loopback); the host reaches pod IPs through the bridge;
- kube-proxy (iptables mode) makes Service cluster IPs (10.0.0.0/24) answer on the host and in
  pods; its rules, and the bridge, are removed at teardown;
- the API server reaches the kubelet (``pods/log``, exec) with a client certificate of a CA made
  here; the kubelet accepts only that CA (no anonymous access) and serves a self-signed
  certificate.

Every component authenticates with a bearer token in ``system:masters``: a throwaway test
cluster, not a model of production RBAC. The node changes the host (cgroups under
``kubepods``, iptables chains ``KUBE-*``, a bridge), so it needs root; one node runs per machine
at a time (a lock in the cache directory).

Where root lacks CAP_SYS_RESOURCE (some sandboxed CI machines), no process may lower an OOM
score, and runc fails every pod sandbox (the kubelet asks for -998) with "can't get final
child's PID from pipe: EOF". The node's engine then runs runc through a wrapper that raises a
negative ``oomScoreAdj`` to 0 (``$HML_CACHE/kube-node/run/runc-oom``); elsewhere it is plain runc.

Run it by hand (Ctrl-C stops it and cleans up)::

    .venv/bin/python -m tests.integration.k8s_node    # prints KUBECONFIG and DOCKER_HOST
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

import pytest

from tests.integration.k8s_server import APISERVER_VERSION, Cluster, _kubeconfig, _local_apiserver
from tests.support import free_port, require_module, unavailable

NODE_NAME = "hml-node"
POD_CIDR = "10.244.0.0/24"
BRIDGE = "hml-cni0"
PAUSE_IMAGE = f"hypermodel/pause:{APISERVER_VERSION}"
NODE_BINARIES = ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
READY_TIMEOUT = 180.0  # the node is Ready about 15 s after the kubelet starts on 2 cores
ENGINE_TIMEOUT = 60.0
LOCK_TIMEOUT = 900.0
CAP_SYS_RESOURCE = 24
POD_LABEL = "io.kubernetes.pod.namespace"  # dockershim labels every pod container with it


def cache_dir() -> Path:
    return Path(os.environ.get("HML_CACHE") or Path.home() / ".cache" / "hypermodel")


def node_binary(name: str) -> Path:
    return cache_dir() / f"{name}-{APISERVER_VERSION}"


def engine_dir() -> Path:
    return cache_dir() / "kube-node"


@dataclass
class Node(Cluster):
    """A running single-node cluster: the Cluster client, plus what the tests need to know."""

    node_name: str = NODE_NAME
    docker_host: str = ""
    workdir: Path = field(default_factory=Path)
    timings: dict[str, float] = field(default_factory=dict)

    def log(self, component: str, lines: int = 40) -> str:
        """The last lines of a component's log (etcd, kube-apiserver, kubelet, dockerd...)."""
        path = self.workdir / f"{component}.log"
        if component == "dockerd":
            path = engine_dir() / "run" / "dockerd.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def docker(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` against the node's engine, output captured."""
        return subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_HOST": self.docker_host},
            timeout=timeout,
            check=False,
        )


class _docker_cli:
    def __init__(self, host: str) -> None:
        self.env = {**os.environ, "DOCKER_HOST": host}

    def __call__(
        self, *args: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        out = subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, env=self.env, timeout=300
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {out.stderr.decode(errors='replace')}")
        return out

    def answers(self) -> bool:
        try:
            return self("version", "--format", "{{.Server.Version}}", check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def pod_containers(self) -> list[str]:
        """Every container a kubelet made on this engine."""
        out = self("ps", "-aq", "--filter", f"label={POD_LABEL}", check=False).stdout
        return out.decode().split()


class local_node:
    """Start the node; stop it and undo its changes to the host on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        run = engine_dir() / "run"
        self.docker_host = f"unix://{run / 'docker.sock'}"
        self.docker = _docker_cli(self.docker_host)
        self.api: _local_apiserver | None = None
        self.engine: subprocess.Popen[bytes] | None = None
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.lock: IO[str] | None = None
        self.node: Node | None = None

    # -- preconditions ----------------------------------------------------------------------------
    def _check(self) -> tuple[str, str]:
        if sys.platform != "linux":
            unavailable("the test Kubernetes node runs on Linux only")
        if os.geteuid() != 0:
            unavailable(
                "the test Kubernetes node needs root (its kubelet makes cgroups, its kube-proxy "
                "iptables rules, its CNI plugin a bridge, and it starts its own dockerd)"
            )
        missing = [b for b in ("kube-apiserver", *NODE_BINARIES, "pause") if not _exe(b)]
        if missing:
            unavailable(
                f"no {', '.join(missing)} {APISERVER_VERSION} in {cache_dir()} (build them with "
                "scripts/build-kube-node.sh, which `make test-infra` runs)"
            )
        cni = next((d for d in CNI_DIRS if all((Path(d) / p).exists() for p in CNI_PLUGINS)), "")
        if not cni:
            unavailable(
                f"no CNI plugins ({', '.join(CNI_PLUGINS)}) in {' or '.join(CNI_DIRS)}: "
                "apt-get install containernetworking-plugins (make test-infra)"
            )
        for tool in ("etcd", "openssl", "iptables", "ip", "docker", "dockerd", "runc"):
            if shutil.which(tool) is None:
                unavailable(f"{tool} is needed by the test Kubernetes node (make test-infra)")
        return cni, _node_ip()

    def _take_lock(self) -> None:
        engine_dir().mkdir(parents=True, exist_ok=True)
        self.lock = open(engine_dir() / "lock", "w")  # held until __exit__
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.lock.close()
                    self.lock = None
                    unavailable(
                        f"another test Kubernetes node held {engine_dir() / 'lock'} for "
                        f"{LOCK_TIMEOUT:.0f}s"
                    )
                time.sleep(1)

    # -- start --------------------------------------------------------------------------------------
    def __enter__(self) -> Node:
        cni, node_ip = self._check()
        self._take_lock()
        try:
            return self._start(cni, node_ip)
        except BaseException:
            self.__exit__()
            raise

    def _start(self, cni: str, node_ip: str) -> Node:
        started = time.monotonic()
        # a node of ours that crashed may have left its processes, engine, rules and bridge
        _stop_leftover_processes()
        self._stop_engine()
        _cleanup_network()
        self._start_engine()
        self._pause_image()
        timings = {"engine": round(time.monotonic() - started, 1)}
        w = self.workdir
        pki = w / "pki"
        pki.mkdir()
        _pki(pki)
        users = ("kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy")
        self.api = _local_apiserver(
            w,
            extra_args=[
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ],
            users=users,
        )
        cluster = self.api.__enter__()
        for proc in self.api.procs:  # started with a list of str: etcd's, kube-apiserver's
            _remember(proc, str(cast(list[str], proc.args)[0]))
        timings["apiserver"] = round(time.monotonic() - started, 1)
        ca = w / "certs" / "apiserver.crt"
        for user in users:
            config = _kubeconfig(cluster.server, self.api.tokens[user], ca)
            (w / f"{user}.kubeconfig").write_text(config)

        self._spawn(
            "kube-controller-manager",
            [
                str(node_binary("kube-controller-manager")),
                f"--kubeconfig={w / 'kube-controller-manager.kubeconfig'}",
                "--leader-elect=false",
                "--port=0",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--service-account-private-key-file={w / 'sa.key'}",
                f"--root-ca-file={ca}",
                "--service-cluster-ip-range=10.0.0.0/24",
                f"--cluster-cidr={POD_CIDR}",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(node_binary("kube-scheduler")),
                f"--kubeconfig={w / 'kube-scheduler.kubeconfig'}",
                "--leader-elect=false",
                "--port=0",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
            ],
        )
        self._start_kubelet(cni, node_ip, pki)
        self._start_proxy()
        self._wait_node_ready(cluster)
        timings["node_ready"] = round(time.monotonic() - started, 1)
        self.node = Node(
            kubeconfig=cluster.kubeconfig,
            server=cluster.server,
            docker_host=self.docker_host,
            workdir=w,
            timings=timings,
        )
        return self.node

    def _start_engine(self) -> None:
        run = engine_dir() / "run"
        run.mkdir(parents=True, exist_ok=True)
        (run / "docker.sock").unlink(missing_ok=True)
        args = [
            "dockerd",
            f"--data-root={engine_dir() / 'docker'}",
            f"--exec-root={run / 'exec'}",
            f"--host={self.docker_host}",
            f"--pidfile={run / 'docker.pid'}",
            "--iptables=false",
            "--bridge=none",
        ]
        if not _has_capability(CAP_SYS_RESOURCE):
            wrapper = run / "runc-oom"
            wrapper.write_text(_RUNC_OOM.format(runc=shutil.which("runc")))
            wrapper.chmod(0o755)
            args += [f"--add-runtime=runc-oom={wrapper}", "--default-runtime=runc-oom"]
        with open(run / "dockerd.log", "ab") as log:
            self.engine = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + ENGINE_TIMEOUT
        while not self.docker.answers():
            if self.engine.poll() is not None or time.monotonic() > deadline:
                tail = (run / "dockerd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the node's dockerd did not start:\n{tail}")
            time.sleep(0.25)

    def _pause_image(self) -> None:
        if self.docker("image", "inspect", PAUSE_IMAGE, check=False).returncode == 0:
            return
        data = node_binary("pause").read_bytes()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("pause")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        self.docker(
            "import",
            "--change",
            'ENTRYPOINT ["/pause"]',
            "--message",
            f"pause from the kubernetes {APISERVER_VERSION} source (build/pause/linux/pause.c)",
            "-",
            PAUSE_IMAGE,
            stdin=buffer.getvalue(),
        )

    def _start_kubelet(self, cni: str, node_ip: str, pki: Path) -> None:
        w = self.workdir
        (w / "cni" / "net.d").mkdir(parents=True)
        bridge = {
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": POD_CIDR}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(w / "cni" / "ipam"),
            },
        }
        conflist = {"cniVersion": "0.4.0", "name": "hml-pods", "plugins": [bridge]}
        (w / "cni" / "net.d" / "10-hml.conflist").write_text(json.dumps(conflist, indent=2))
        config = {
            "kind": "KubeletConfiguration",
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "address": node_ip,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": free_port(),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "AlwaysAllow"},  # any client the CA vouches for
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "makeIPTablesUtilChains": False,  # kube-proxy makes the chains it needs
            "serializeImagePulls": False,
            # a full CI disk must not evict the test pods nor collect the images under test
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
        }
        (w / "kubelet.json").write_text(json.dumps(config, indent=2))
        for sub in ("kubelet", "dockershim", "volume-plugins", "kubelet-pki", "cni/cache"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        self._spawn(
            "kubelet",
            [
                str(node_binary("kubelet")),
                f"--config={w / 'kubelet.json'}",
                f"--kubeconfig={w / 'kubelet.kubeconfig'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={node_ip}",
                f"--root-dir={w / 'kubelet'}",
                f"--cert-dir={w / 'kubelet-pki'}",
                f"--volume-plugin-dir={w / 'volume-plugins'}",
                "--container-runtime=docker",
                f"--docker-endpoint={self.docker_host}",
                f"--container-runtime-endpoint=unix://{w / 'dockershim.sock'}",
                f"--experimental-dockershim-root-directory={w / 'dockershim'}",
                f"--pod-infra-container-image={PAUSE_IMAGE}",
                "--network-plugin=cni",
                f"--cni-bin-dir={cni}",
                f"--cni-conf-dir={w / 'cni' / 'net.d'}",
                f"--cni-cache-dir={w / 'cni' / 'cache'}",
            ],
        )

    def _start_proxy(self) -> None:
        w = self.workdir
        (engine_dir() / "proxy-rules").write_text(f"{w}\n")  # so a crashed run's get removed
        self._spawn(
            "kube-proxy",
            [
                str(node_binary("kube-proxy")),
                f"--kubeconfig={w / 'kube-proxy.kubeconfig'}",
                f"--hostname-override={NODE_NAME}",
                "--proxy-mode=iptables",
                f"--cluster-cidr={POD_CIDR}",
                f"--healthz-bind-address=127.0.0.1:{free_port()}",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                "--conntrack-max-per-core=0",  # leave the host's conntrack table size alone
                "--iptables-min-sync-period=0s",
            ],
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.workdir / f"{name}.log", "wb") as log:  # the child keeps its own handle
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append((name, proc))
        _remember(proc, argv[0])

    def _wait_node_ready(self, cluster: Cluster) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        why = "not registered"
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{tail}")
            node = cluster.get(f"/api/v1/nodes/{NODE_NAME}")
            if node is not None:
                conditions = node["status"].get("conditions", [])
                ready = [c for c in conditions if c.get("type") == "Ready"]
                if ready:
                    why = f"Ready={ready[0]['status']}: {ready[0].get('message')}"
                # pods need the namespace's service account, made by the controller-manager
                sa = cluster.get("/api/v1/namespaces/default/serviceaccounts/default")
                if ready and ready[0]["status"] == "True" and sa is not None:
                    return
            time.sleep(0.5)
        raise TimeoutError(
            f"node {NODE_NAME} not Ready after {READY_TIMEOUT:.0f}s ({why}); kubelet log:\n"
            + (self.workdir / "kubelet.log").read_text(errors="replace")[-3000:]
        )

    # -- stop ---------------------------------------------------------------------------------------
    def __exit__(self, *exc: object) -> None:
        # No graceful pod deletion: the kubelet stops first, then its containers are removed
        # (their network namespaces and veths go with them) and its mounts unmounted.
        try:
            if self.node is not None:
                self.node.close()
            for _, proc in reversed(self.procs):
                _stop(proc)
            self.procs.clear()
            if self.api is not None:
                self.api.__exit__()
            if self.lock is not None:
                (engine_dir() / "pids").unlink(missing_ok=True)
                self._stop_engine()
                _cleanup_network()
                _unmount_under(self.workdir)
        finally:
            if self.lock is not None:
                self.lock.close()  # releases the flock
                self.lock = None

    def _stop_engine(self) -> None:
        """Stop the node's dockerd (ours, or one a crashed run left) with its pod containers."""
        if self.docker.answers():
            ids = self.docker.pod_containers()
            if ids:
                self.docker("rm", "-f", "-v", *ids, check=False)
        if self.engine is not None:
            _stop(self.engine, timeout=30)
            self.engine = None
            return
        pidfile = engine_dir() / "run" / "docker.pid"
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"dockerd" in cmdline and str(engine_dir()).encode() in cmdline:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.2)


_RUNC_OOM = """#!/bin/sh
# runc for the test node's engine, on machines where root lacks CAP_SYS_RESOURCE: a negative
# OOM score adjustment (the kubelet asks -998 for pod sandboxes) cannot be set there, so it
# becomes 0 in the bundle's config.json. Written by tests/integration/k8s_node.py.
prev=
for arg in "$@"; do
  if [ "$prev" = --bundle ] && [ -f "$arg/config.json" ]; then
    sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/' "$arg/config.json"
  fi
  prev=$arg
done
exec {runc} "$@"
"""


def _exe(name: str) -> bool:
    return os.access(node_binary(name), os.X_OK)


def _has_capability(bit: int) -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError):
        pass
    return True


def _node_ip() -> str:
    """The address of the interface of the default route (what the kubelet would pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("203.0.113.1", 9))  # TEST-NET-3: connect() sends no packet
            return str(s.getsockname()[0])
        except OSError:
            unavailable("the test Kubernetes node needs a non-loopback IPv4 address (no route)")


def _pki(pki: Path) -> None:
    """A CA the kubelet trusts, and the API server's client certificate signed by it."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=pki)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=hml-test-node-ca",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver-kubelet-client.key",
        "-out", "apiserver-kubelet-client.csr",
        "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client",
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "apiserver-kubelet-client.csr", "-CA", "ca.crt",
        "-CAkey", "ca.key", "-CAcreateserial", "-days", "7",
        "-out", "apiserver-kubelet-client.crt",
    )  # fmt: skip


def _cleanup_network() -> None:
    """Remove kube-proxy's iptables rules and the pods' bridge, if a node of ours made them."""
    marker = engine_dir() / "proxy-rules"
    if marker.exists():
        subprocess.run([str(node_binary("kube-proxy")), "--cleanup"], capture_output=True)
        # what --cleanup leaves: chains kube-proxy made but deletes only in other modes
        for table, chain in (
            ("nat", "KUBE-MARK-DROP"),
            ("nat", "KUBE-MARK-MASQ"),
            ("nat", "KUBE-PROXY-CANARY"),
            ("filter", "KUBE-PROXY-CANARY"),
            ("mangle", "KUBE-PROXY-CANARY"),
        ):
            for flag in ("-F", "-X"):
                subprocess.run(["iptables", "-t", table, flag, chain], capture_output=True)
        marker.unlink()
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)


def _remember(proc: subprocess.Popen[bytes], program: str) -> None:
    """Note the pid and program of a process of the node, for the next run should this one
    crash."""
    with open(engine_dir() / "pids", "a") as pids:
        pids.write(f"{proc.pid} {program}\n")


def _program(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return ""


def _stop_leftover_processes() -> None:
    """Stop the components a crashed run left running (their pids are in the engine's dir), so
    that an old kube-proxy does not keep rewriting the rules of the new one."""
    pids = engine_dir() / "pids"
    try:
        lines = pids.read_text().splitlines()
    except OSError:
        return
    alive = []
    for line in lines:
        pid_text, _, program = line.partition(" ")
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if program and _program(pid) == program:  # still ours, not a reused pid
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
    deadline = time.monotonic() + 15
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()]
        time.sleep(0.2)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    pids.unlink(missing_ok=True)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _unmount_under(root: Path) -> None:
    """tmpfs mounts (secret volumes) a stopped kubelet may leave under its root directory."""
    prefix = str(root.resolve()) + "/"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


@pytest.fixture(scope="session")
def k8s_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real single-node cluster for the whole session; skipped where it cannot start (not
    root, no binaries), failing under CI."""
    require_module("kubernetes")
    node = local_node(tmp_path_factory.mktemp("k8s-node"))
    try:
        started = node.__enter__()
    except (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
        unavailable(f"the test Kubernetes node did not start: {exc}")
    try:
        yield started
    finally:
        node.__exit__()


def main() -> None:
    """Start a node by hand; print its KUBECONFIG and DOCKER_HOST; Ctrl-C stops it."""
    import tempfile

    def interrupt(signo: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="hml-k8s-node-"))
    with local_node(workdir) as node:
        print(f"node {node.node_name} Ready in {node.timings['node_ready']}s (logs in {workdir})")
        print(f"export KUBECONFIG={node.kubeconfig} DOCKER_HOST={node.docker_host}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)


if __name__ == "__main__":
    main()
