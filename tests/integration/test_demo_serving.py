"""The demo end to end as the README tells it: train with run-all, serve with run-prod, predict
over a real socket with lineage headers, many clients at once (their calls share forest calls)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO, free_port, require_module, unavailable, wait_for_port


def _wines() -> list[str]:
    require_module("wines")
    script = shutil.which("wines", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "wines"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("demo")
    root = tmp / "bucket"
    env = {**os.environ, "HML_ROOT": str(root)}
    env.pop("WINES_IMAGE", None)
    # --force: a developer's checkout may have uncommitted changes (the lineage records it)
    trained = subprocess.run(
        [*_wines(), "pipelines", "wines", "run-all", "-q", "--force"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    port = free_port()
    serve = ["inference", "run-prod", "--threads", "8", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_wines(), *serve],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, timeout=90)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        proc.wait()
        unavailable(f"the demo's server did not start: {exc}: {log.read_text()[-2000:]}")
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode()


def _predict(url: str, features: list[float]) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        f"{url}/predict",
        data=json.dumps({"features": features}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        return response.status, headers, json.loads(response.read())


def test_the_trained_demo_answers_many_clients_with_lineage(served: tuple[str, Path]) -> None:
    from sklearn.datasets import load_wine

    url, _ = served
    index = json.loads(_get(f"{url}/"))
    assert index["ready"] is True
    (model,) = index["models"].values()
    rows = [[float(v) for v in row] for row in load_wine().data[::15]]  # 12 wines, 3 cultivars

    alone = [_predict(url, row) for row in rows]  # one at a time: batches of one
    for status, headers, body in alone:
        assert status == 200
        assert headers["x-model-long-name"] == model["long_name"]
        assert headers["x-model-digest"].endswith(model["model_sha256"])
        assert len(body["probabilities"]) == 3
        assert body["cultivar"] == max(range(3), key=lambda k: body["probabilities"][k])
    assert {body["cultivar"] for _, _, body in alone} == {0, 1, 2}

    with ThreadPoolExecutor(16) as pool:  # 16 clients, each row four times
        together = list(pool.map(lambda row: _predict(url, row), rows * 4))
    for i, (status, headers, body) in enumerate(together):
        assert status == 200 and headers["x-model-long-name"] == model["long_name"]
        assert body == alone[i % len(rows)][2]  # batched answers equal the lone ones

    batches = json.loads(_get(f"{url}/"))["batches"]["predict_proba"]
    assert batches["items"] == len(rows) * 5 and batches["max_batch_size"] == 64
    assert batches["batches"] <= batches["items"]
    metrics = _get(f"{url}/metrics")
    assert f'hml_batch_size_sum{{batch="predict_proba"}} {float(len(rows) * 5)}' in metrics
