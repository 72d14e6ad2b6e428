"""`run-prod --drain-seconds`: on SIGTERM the server keeps answering, /readyz 503, then exits 0.

What a pod of `inference deploy` does when Kubernetes stops it (HML_DRAIN_SECONDS=5 there);
tests/integration/test_cluster_deploy.py checks the effect: no failed request in a rollout."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from hypermodel.serving.model import ModelContainer
from tests.integration.test_serving_waitress import _call, _start, published

__all__ = ["published"]  # the fixture, from test_serving_waitress

ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]


def test_sigterm_drains_then_stops(published: tuple[Path, ModelContainer], tmp_path: Path) -> None:
    root, _ = published
    proc, port = _start(root, tmp_path, "run-prod", "--drain-seconds", "2")
    url = f"http://127.0.0.1:{port}"
    try:
        assert _call(f"{url}/readyz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        time.sleep(0.3)
        status, _, body = _call(f"{url}/readyz")
        assert status == 503
        assert json.loads(body)["reasons"] == ["shutting down: draining before exit"]
        status, headers, _ = _call(f"{url}/predict", {"features": ROW})  # still served
        assert status == 200 and headers["x-model-version"]
        assert proc.wait(timeout=15) == 0
        assert 1.8 <= time.monotonic() - sent < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert "SIGTERM: draining for 2s (readyz 503), then stopping" in log


def test_sigterm_without_drain_stops_at_once(
    published: tuple[Path, ModelContainer], tmp_path: Path
) -> None:
    root, _ = published
    proc, port = _start(root, tmp_path, "run-prod")
    try:
        assert _call(f"http://127.0.0.1:{port}/readyz")[0] == 200
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - sent < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
