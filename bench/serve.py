"""bench serve: wrk against `<app> inference run-prod` vs the same handler in bare Flask+waitress
and vs `mlflow models serve` on the same model, and the same server with the route's model
calls batched across concurrent requests (inference_app.batch); `--soak N` adds an N-second
full-load soak. Beside those, the same model served by an alias with a poll running (against
the same server pinned to the version), and a route of named features with drift counting on
(the model published with its training distributions) against off (published without).

    python bench/serve.py                       # 5 interleaved rounds of 8 s per server and model
    python bench/serve.py --soak 60             # plus a 60 s soak of run-prod (errors, RSS)
    python bench/serve.py --model tree          # only the depth-3 tree
    python bench/serve.py --model tree --no-mlflow --duration 4   # a short run on a shared machine

Two models: the demo's (RandomForest, 100 trees, depth 4, on sklearn's wine data), where
prediction time dominates, and a depth-3 tree, where the server's own overhead dominates.
wrk shares the machine's cores with the server: read the ratios (medians of paired rounds).
MLflow runs from its own venv (bench/.venv-mlflow, created on first use with the same
scikit-learn/numpy as ours); when it cannot be installed the MLflow line says why.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import PYTHON, REPO, line, ratio  # bench/ is on sys.path when run as a script

BENCH = "serve"
BATCHED = "hypermodel run-prod, batched route"
V2 = "hypermodel run-prod, v2 infer route"  # the same server's Open Inference Protocol route
OURS_LATEST = "hypermodel run-prod"  # loads 'latest' (followed, polled every 30 s by default)
PINNED = "hypermodel run-prod, pinned version"  # --model bench-clf=<version>: nothing followed
ALIAS = "hypermodel run-prod, by alias"  # --model bench-clf=production, polled every second
DRIFT_ON = "hypermodel run-prod, named features, drift on"
DRIFT_OFF = "hypermodel run-prod, named features, drift off"
ALIAS_POLL_SECONDS = 1  # far more often than the default 30 s, so the poll's cost would show
NAMED_PATH = "/predict-named"
MLFLOW_VENV = REPO / "bench" / ".venv-mlflow"
ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]

OURS = textwrap.dedent(
    """
    from hypermodel import hml
    from hypermodel.data.model import BaseData
    from hypermodel.serving.model import ModelContainer

    app = hml.HmlApp("bench", package_entrypoint="bench")


    class Wine(BaseData):
        features: list[float]


    class Prediction(BaseData):
        cultivar: int


    @hml.inference(app.inference)
    def init(inference_app):
        import numpy as np

        model = inference_app.load_model(ModelContainer("bench-clf"))

        @inference_app.route("/predict", input=Wine, output=Prediction)
        def predict(wine):
            return Prediction(cultivar=int(model.predict(np.asarray([wine.features]))[0]))


    if __name__ == "__main__":
        app.start()
    """
)

# The same server with the route's model calls shared by concurrent requests (adaptive batching).
OURS_BATCHED = OURS.replace(
    "    @inference_app.route",
    "    batched = inference_app.batch(model.predict, max_batch_size=64)\n\n"
    "    @inference_app.route",
).replace("int(model.predict(np.asarray([wine.features]))[0])", "int(batched(wine.features))")
assert "batched = inference_app.batch(" in OURS_BATCHED and "int(batched(" in OURS_BATCHED

# A route whose input record names the model's features, so that drift counting reads them (a
# record of one `features` list names no feature): drift on when the published model carries
# its training distributions, off when it does not; the handler is the same.
NAMES = [f"x{i}" for i in range(len(ROW))]
OURS_NAMED = (
    textwrap.dedent(
        """
    from hypermodel import hml
    from hypermodel.data.model import BaseData
    from hypermodel.serving.model import ModelContainer

    app = hml.HmlApp("bench", package_entrypoint="bench")
    NAMES = {names!r}


    class Wine(BaseData):
        {fields}


    class Prediction(BaseData):
        cultivar: int


    @hml.inference(app.inference)
    def init(inference_app):
        import numpy as np

        model = inference_app.load_model(ModelContainer("bench-clf"))

        @inference_app.route("{path}", input=Wine, output=Prediction)
        def predict(wine):
            row = [getattr(wine, name) for name in NAMES]
            return Prediction(cultivar=int(model.predict(np.asarray([row]))[0]))


    if __name__ == "__main__":
        app.start()
    """
    )
    .replace("{names!r}", repr(NAMES))
    .replace("{fields}", "\n    ".join(f"{name}: float" for name in NAMES))
    .replace("{path}", NAMED_PATH)
)

BARE = textwrap.dedent(
    """
    import sys

    import joblib
    import numpy as np
    import waitress
    from flask import Flask, jsonify, request

    model = joblib.load(sys.argv[1])
    app = Flask(__name__)


    @app.route("/predict", methods=["POST"])
    def predict():
        features = request.get_json()["features"]
        return jsonify({"cultivar": int(model.predict(np.asarray([features]))[0])})


    waitress.serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=8)
    """
)

# MLflow 3 saves sklearn models with skops, which asks to trust the tree node type explicitly.
MLFLOW_SAVE = (
    "import joblib, mlflow.sklearn, sys; mlflow.sklearn.save_model(joblib.load(sys.argv[1]), sys.argv[2], "
    "skops_trusted_types=['sklearn.tree._tree.Tree'])"
)


def train(kind: str, work: Path) -> Path:
    import joblib
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine()
    if kind == "demo":
        model: Any = RandomForestClassifier(n_estimators=100, max_depth=4, random_state=7)
    else:
        model = DecisionTreeClassifier(max_depth=3, random_state=7)
    model.fit(data.data, data.target)
    path = work / "model.joblib"
    joblib.dump(model, path)
    return path


def get_json(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def check_variants(urls: dict[str, str]) -> None:
    """The variant lines measure what they say: the alias server follows 'production' and has
    polled it, the drift-on server counted the load's features, the drift-off server none."""
    base = {name: url.rsplit("/", 1)[0] for name, url in urls.items()}
    followed = get_json(f"{base[ALIAS]}/readyz").get("details", {}).get("bench-clf", {})
    if followed.get("ref") != "production" or not followed.get("last_check"):
        raise RuntimeError(f"the by-alias server does not follow and poll 'production': {followed}")
    if get_json(f"{base[PINNED]}/readyz").get("details"):
        raise RuntimeError("the pinned-version server follows a moving ref; it should not")
    counted = get_json(f"{base[DRIFT_ON]}/").get("drift", {}).get("bench-clf", {})
    samples = counted.get("numeric", {}).get(NAMES[0], {}).get("samples", 0)
    if samples < 100:
        raise RuntimeError(f"the drift-on server counted {samples} values of {NAMES[0]}: {counted}")
    if get_json(f"{base[DRIFT_OFF]}/").get("drift"):
        raise RuntimeError("the drift-off server counts drift; it should not")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 180.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}): {log.read_text()[-1500:]}")
        try:
            body = json.dumps(payload_for(url)).encode()
            req = urllib.request.Request(
                url, data=body, headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {log.read_text()[-1500:]}")


def payload_for(url: str) -> dict[str, Any]:
    if url.endswith(NAMED_PATH):
        return dict(zip(NAMES, ROW, strict=True))
    if url.endswith("/infer"):
        return {"inputs": [{"name": "x", "shape": [1, len(ROW)], "datatype": "FP64", "data": ROW}]}
    return {"inputs": [ROW]} if url.endswith("/invocations") else {"features": ROW}


def start(
    name: str, cmd: list[str], url: str, work: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = work / f"{name}.log"
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env={**os.environ, **(env or {})},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_ready(url, proc, log)
    return proc


def start_ours(
    model_path: Path, work: Path, variant: str = "latest"
) -> tuple[subprocess.Popen[bytes], str]:
    """run-prod on the model, published to a bucket of its own. ``variant``: ``latest`` (the
    app's own ref), ``batched``, ``version`` (--model pins the version), ``alias`` (--model
    follows 'production', polled every ALIAS_POLL_SECONDS), ``drift-on`` / ``drift-off`` (the
    named-features route; the model published with / without its training distributions)."""
    import joblib

    from hypermodel import hml
    from hypermodel.models.store import ModelStore
    from hypermodel.serving.model import ModelContainer

    root = work / f"bucket-{variant}"
    bucket_app = hml.HmlApp("bench", root=str(root))
    mc = ModelContainer("bench-clf")
    mc.model = joblib.load(model_path)
    if variant == "drift-on":
        import pandas as pd
        from sklearn.datasets import load_wine

        mc.analyze_distributions(pd.DataFrame(load_wine().data, columns=NAMES), numeric=NAMES)
    ref = mc.publish(bucket_app)
    source = {"batched": OURS_BATCHED, "drift-on": OURS_NAMED, "drift-off": OURS_NAMED}
    script = f"ours_{variant.replace('-', '_')}_app.py"
    (work / script).write_text(source.get(variant, OURS))
    port = free_port()
    path = NAMED_PATH if variant.startswith("drift") else "/predict"
    url = f"http://127.0.0.1:{port}{path}"
    cmd = [
        PYTHON,
        script,
        "inference",
        "run-prod",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--threads",
        "8",
    ]
    if variant == "version":
        cmd += ["--model", f"bench-clf={ref.version}"]
    elif variant == "alias":
        ModelStore(bucket_app.storage()).set_alias("bench-clf", "production", ref.version)
        cmd += [
            "--model",
            "bench-clf=production",
            "--model-poll-seconds",
            str(ALIAS_POLL_SECONDS),
        ]
    return start(f"ours-{variant}", cmd, url, work, {"HML_ROOT": str(root)}), url


def start_bare(model_path: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    (work / "bare_app.py").write_text(BARE)
    port = free_port()
    url = f"http://127.0.0.1:{port}/predict"
    return start("bare", [PYTHON, "bare_app.py", str(model_path), str(port)], url, work), url


def mlflow_python() -> tuple[Path | None, str]:
    """The MLflow venv's python, creating it on first use; (None, reason) when impossible."""
    python = MLFLOW_VENV / "bin" / "python"
    if not (MLFLOW_VENV / "bin" / "mlflow").exists():
        import numpy
        import scipy
        import sklearn

        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True, capture_output=True
            )
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "mlflow",
                    f"scikit-learn=={sklearn.__version__}",
                    f"numpy=={numpy.__version__}",
                    f"scipy=={scipy.__version__}",
                ],
                check=True,
                capture_output=True,
                timeout=900,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            return (
                None,
                f"pip install mlflow failed: {detail.decode(errors='replace')[-300:] or exc}",
            )
    return python, ""


def start_mlflow(model_path: Path, work: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    python, reason = mlflow_python()
    if python is None:
        return None, reason
    saved = work / "mlflow-model"
    subprocess.run(
        [str(python), "-c", MLFLOW_SAVE, str(model_path), str(saved)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/invocations"
    cmd = [
        str(python.parent / "mlflow"),
        "models",
        "serve",
        "-m",
        str(saved),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "--env-manager",
        "local",
    ]
    env = {
        "PATH": f"{python.parent}:{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": f"file://{work}/mlruns",
    }
    return start("mlflow", cmd, url, work, env), url


def wrk(url: str, seconds: int, work: Path, connections: int = 16) -> dict[str, float]:
    script = work / "post.lua"
    body = json.dumps(payload_for(url)).replace("\\", "\\\\").replace("'", "\\'")
    script.write_text(
        f"wrk.method = 'POST'\nwrk.body = '{body}'\nwrk.headers['Content-Type'] = 'application/json'\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise ValueError(f"no {pct}% latency in wrk output:\n{out}")
        return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sockets.groups()) if sockets else 0
    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "requests": requests,
        "errors": errors,
    }


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its children (mlflow/uvicorn fork workers)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        status = Path(f"/proc/{p}/status")
        if status.exists():
            m = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
            total += int(m.group(1)) * 1024 if m else 0
    return total


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def report(name: str, runs: list[dict[str, float]]) -> dict[str, float]:
    med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
    errors = sum(r["errors"] for r in runs)
    line(BENCH, f"{name} req/s", med["rps"], unit=" req/s", runs=len(runs))
    line(BENCH, f"{name} p50 latency", med["p50"], runs=len(runs))
    line(BENCH, f"{name} p99 latency", med["p99"], runs=len(runs))
    if errors:
        print(f"{BENCH}: {name} had {errors} non-2xx/socket errors", flush=True)
    return med


def soak(url: str, proc: subprocess.Popen[bytes], seconds: int, work: Path) -> None:
    """Full load for ``seconds``: every response must be 2xx; RSS sampled after warm-up and at the end."""
    wrk(url, 5, work)  # warm: caches, allocator arenas, thread pool all populated
    before = rss_bytes(proc.pid)
    result = wrk(url, seconds, work)
    after = rss_bytes(proc.pid)
    print(
        f"{BENCH}: soak {seconds}s run-prod: {int(result['requests'])} requests, {int(result['errors'])} errors, "
        f"{result['rps']:.0f} req/s, p50 {result['p50'] * 1000:.2f}ms, p99 {result['p99'] * 1000:.2f}ms",
        flush=True,
    )
    print(
        f"{BENCH}: soak RSS start {before / 2**20:.1f} MiB, end {after / 2**20:.1f} MiB "
        f"(growth {(after - before) / 2**20:+.1f} MiB)",
        flush=True,
    )


def measure(kind: str, args: argparse.Namespace, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the servers on model ``kind``, run interleaved rounds, print lines; keep ours up."""
    model_path = train(kind, work)
    tag = f"[{kind}]"
    procs: dict[str, subprocess.Popen[bytes] | None] = {}
    urls: dict[str, str] = {}
    try:
        procs[OURS_LATEST], urls[OURS_LATEST] = start_ours(model_path, work)
        procs["bare flask+waitress"], urls["bare flask+waitress"] = start_bare(model_path, work)
        procs[BATCHED], urls[BATCHED] = start_ours(model_path, work, "batched")
        urls[V2] = urls[OURS_LATEST].replace("/predict", "/v2/models/bench-clf/infer")
        for name, variant in (
            (PINNED, "version"),
            (ALIAS, "alias"),
            (DRIFT_OFF, "drift-off"),
            (DRIFT_ON, "drift-on"),
        ):
            procs[name], urls[name] = start_ours(model_path, work, variant)
        if args.no_mlflow:
            print(f"{BENCH}: {tag} mlflow skipped: --no-mlflow")
        else:
            proc, url_or_reason = start_mlflow(model_path, work)
            if proc is None:
                print(f"{BENCH}: {tag} mlflow skipped: {url_or_reason}")
            else:
                procs["mlflow models serve"], urls["mlflow models serve"] = proc, url_or_reason
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
        for url in urls.values():
            wrk(url, 2, work)  # warm-up, not measured
        names = list(urls)
        for r in range(args.rounds):
            # Rounds are interleaved and each starts with a different server, so drift and bursts
            # from other work on the shared machine hit every server alike.
            for name in names[r % len(names) :] + names[: r % len(names)]:
                runs[name].append(wrk(urls[name], args.duration, work))
        check_variants(urls)
        for name, r in runs.items():
            report(f"{tag} {name}", r)
        ours = runs[OURS_LATEST]
        for peer, target in (
            ("bare flask+waitress", ">= 0.9x"),
            ("mlflow models serve", ">= 1.5x"),
        ):
            if peer in runs:  # median of the per-round ratios: each pairs runs adjacent in time
                paired = [o["rps"] / p["rps"] for o, p in zip(ours, runs[peer], strict=True)]
                ratio(
                    BENCH,
                    f"{tag} hypermodel run-prod",
                    f"{peer} (req/s)",
                    statistics.median(paired),
                    target,
                )
        paired = [v["rps"] / o["rps"] for v, o in zip(runs[V2], ours, strict=True)]
        ratio(
            BENCH, f"{tag} {V2}", "its typed /predict (req/s)", statistics.median(paired), ">= 0.8x"
        )
        for ours_name, base, what in (
            (ALIAS, PINNED, "the same server pinned to the version"),
            (DRIFT_ON, DRIFT_OFF, "drift off"),
        ):
            paired = [a["rps"] / b["rps"] for a, b in zip(runs[ours_name], runs[base], strict=True)]
            ratio(
                BENCH,
                f"{tag} {ours_name}",
                f"{what} (req/s)",
                statistics.median(paired),
                ">= 0.95x",
            )
            # the spread: how large a difference the shared machine lets this run resolve
            shown = " ".join(f"{p:.2f}" for p in sorted(paired))
            print(f"{BENCH}: {tag} {ours_name}: per-round ratios {shown}", flush=True)
        if "mlflow models serve" in runs:
            paired = [
                o["rps"] / p["rps"]
                for o, p in zip(runs[BATCHED], runs["mlflow models serve"], strict=True)
            ]
            ratio(
                BENCH,
                f"{tag} {BATCHED}",
                "mlflow models serve (req/s)",
                statistics.median(paired),
                ">= 1.5x",
            )
        ours_proc = procs.pop(OURS_LATEST)
        assert ours_proc is not None
        return ours_proc, urls[OURS_LATEST]
    finally:
        for proc in procs.values():
            stop(proc)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=int, default=8, help="seconds of load per round and server"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--model",
        choices=("demo", "tree", "both"),
        default="both",
        help="demo: the demo's 100-tree forest (the model dominates); tree: a depth-3 "
        "tree (the server dominates); both (default)",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=0,
        metavar="SECONDS",
        help="then soak run-prod (on the last model) this long at full load",
    )
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print(f"{BENCH}: skipped: wrk is not installed (apt-get install wrk, or `make test-infra`)")
        return 0
    kinds = ["demo", "tree"] if args.model == "both" else [args.model]
    print(
        f"{BENCH}: load average {os.getloadavg()[0]:.1f}; wrk -t2 -c16, {args.rounds} x {args.duration}s per server, interleaved; "
        f"{os.cpu_count()} cores shared by wrk and the server",
        flush=True,
    )
    for i, kind in enumerate(kinds):
        work = Path(tempfile.mkdtemp(prefix=f"hml-bench-serve-{kind}-"))
        proc = None
        try:
            proc, url = measure(kind, args, work)
            if args.soak and i == len(kinds) - 1:
                soak(url, proc, args.soak, work)
        finally:
            stop(proc)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
