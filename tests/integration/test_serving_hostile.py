"""`run-prod` (waitress) on a real socket under hostile clients: idle and slow connections, a
fuzz corpus of malformed, huge, non-finite, deeply nested, wrongly typed and non-UTF-8 bodies,
50 MB bodies and broken HTTP. Nothing is a 5xx, every error is the documented JSON shape, and a
good request stays prompt throughout.

Everything is bounded: loopback only, a few hundred sockets, each step with a deadline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypermodel import hml
from hypermodel.serving.model import ModelContainer
from tests.support import REPO, free_port, unavailable, wait_for_port

APP = textwrap.dedent(
    """
    from typing import Any

    from hypermodel import hml
    from hypermodel.data.model import BaseData
    from hypermodel.serving.model import ModelContainer

    app = hml.HmlApp("hostile", package_entrypoint="hostile")


    class Wine(BaseData):
        features: list[float]
        note: str | None = None


    class Cellar(BaseData):
        wines: list[Wine]
        counts: dict[str, int] = {}


    class Prediction(BaseData):
        cultivar: int


    @hml.inference(app.inference)
    def init(inference_app):
        model = inference_app.load_model(ModelContainer("clf"))

        @inference_app.route("/predict", input=Wine, output=Prediction, model="clf")
        def predict(wine):
            return Prediction(cultivar=int(model.predict([wine.features])[0]))

        @inference_app.route("/cellar", input=Cellar, model="clf")
        def cellar(c):
            return {"n": len(c.wines)}

        @inference_app.route("/echo", model="clf")
        def echo(payload: Any) -> Any:
            return {"got": payload}


    if __name__ == "__main__":
        app.start()
    """
)
ROW = [13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]
GOOD = json.dumps({"features": ROW}).encode()
PROMPT_S = 5.0  # a good request's bound under attack: generous (it takes milliseconds)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    from sklearn.datasets import load_wine
    from sklearn.tree import DecisionTreeClassifier

    data = load_wine()
    tmp = tmp_path_factory.mktemp("hostile")
    root = tmp / "bucket"
    mc = ModelContainer("clf")
    mc.model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(data.data, data.target)
    mc.publish(hml.HmlApp("hostile", root=str(root)))
    (tmp / "hostile_app.py").write_text(APP)
    port = free_port()
    log_path = tmp / "server.log"
    env = {**os.environ, "HML_ROOT": str(root), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "hostile_app.py", "inference", "run-prod", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port), "--threads", "4"],
            cwd=tmp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, timeout=60)
        status, _, body = request(port, post("/predict", GOOD), timeout=30)
        assert status == 200, body
    except (RuntimeError, TimeoutError, OSError) as exc:
        proc.kill()
        proc.wait()
        unavailable(f"inference server did not start: {exc}: {log_path.read_text()[-2000:]}")
    yield port, log_path
    proc.terminate()
    proc.wait(timeout=15)


# -- a raw HTTP client: sends exactly the bytes given ------------------------------------------
def post(path: str, body: bytes, content_type: str | None = "application/json") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def request(
    port: int, raw: bytes, timeout: float = 20.0
) -> tuple[int | None, dict[str, str], bytes]:
    """Send ``raw`` (while reading, so a server that answers early and closes is heard), and
    parse the response: (status or None when the server closed without one, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:

        def send() -> None:
            try:
                view = memoryview(raw)
                for start in range(0, len(view), 1 << 20):
                    sock.sendall(view[start : start + (1 << 20)])
            except OSError:
                pass  # the server answered and closed before reading everything: allowed

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        data = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
                if _complete(data):
                    break
        except ConnectionResetError:
            pass
        sender.join(timeout=timeout)
    return _parse(data)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def _parse(data: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, data
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_documented_error(
    status: int | None, headers: dict[str, str], body: bytes, what: str
) -> None:
    assert status is not None, f"{what}: the server closed without answering"
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        assert headers.get("content-type", "").startswith("application/json"), (
            f"{what}: {status} with content type {headers.get('content-type')}: {body[:300]!r}"
        )
        answer = json.loads(body)
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str), (what, answer)


def good_request_time(port: int) -> float:
    """Seconds a good prediction takes (PROMPT_S + 5 when it does not come in that time)."""
    t0 = time.monotonic()
    try:
        status, _, body = request(port, post("/predict", GOOD), timeout=PROMPT_S + 5)
    except TimeoutError:
        return time.monotonic() - t0
    elapsed = time.monotonic() - t0
    assert status == 200 or elapsed > PROMPT_S, (status, body[:300])
    return elapsed


# -- the tests ---------------------------------------------------------------------------------
def test_idle_connections_do_not_shut_out_a_good_request(server: tuple[int, Path]) -> None:
    """200 clients that connect and send nothing used to fill waitress's 100 connections: a
    good request then waited for the idle timeout (minutes)."""
    port, _ = server
    idle: list[socket.socket] = []
    try:
        for _ in range(200):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)  # let the server accept what it will
        assert good_request_time(port) < PROMPT_S
    finally:
        for s in idle:
            s.close()


def _slow_clients(port: int, stop: threading.Event, opened: list[socket.socket]) -> None:
    """Slowloris (headers a byte at a time) and slow bodies, until ``stop``."""
    head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    for i in range(60):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        opened.append(s)
        if i % 2:
            s.sendall(head + f"Content-Length: {len(GOOD)}\r\n\r\n".encode() + GOOD[:5])
        else:
            s.sendall(head[:20])
    position = 20
    while not stop.wait(0.2):
        for i, s in enumerate(opened):
            try:
                if i % 2 == 0 and position < len(head):
                    s.sendall(head[position : position + 1])
            except OSError:
                pass
        position += 1


def corpus() -> Iterator[tuple[str, bytes]]:
    """The fuzz corpus, one request at a time (the 50 MB bodies are made only when sent)."""
    yield from [
        # malformed JSON
        ("truncated", post("/predict", b'{"features": [1, 2,')),
        ("open brace", post("/predict", b"{")),
        ("single quotes", post("/predict", b"{'features': [1]}")),
        ("missing comma", post("/predict", b'{"features": [1 2]}')),
        ("trailing garbage", post("/predict", b'{"features": [1]} x')),
        ("NUL byte", post("/predict", b"\x00")),
        ("bare literal", post("/predict", b"nul")),
        ("empty body", post("/predict", b"")),
        ("whitespace body", post("/predict", b" \r\n\t ")),
        ("a string", post("/predict", b'"features"')),
        ("an array", post("/predict", b"[1, 2, 3]")),
        ("null", post("/predict", b"null")),
        # huge and non-finite numbers
        ("1.7e308", post("/predict", json.dumps({"features": [1.7e308] * 13}).encode())),
        ("-1.7e308", post("/predict", json.dumps({"features": [-1.7e308, *ROW[1:]]}).encode())),
        ("1e39 float", post("/predict", b'{"features": [1e39' + b", 1" * 12 + b"]}")),
        ("1e39 int", post("/predict", b'{"features": [1' + b"0" * 39 + b", 1" * 12 + b"]}")),
        ("5000-digit int", post("/predict", b'{"features": [' + b"9" * 5000 + b", 1" * 12 + b"]}")),
        ("1e400", post("/predict", b'{"features": [1e400' + b", 1" * 12 + b"]}")),
        ("-1e400", post("/predict", b'{"features": [-1e400' + b", 1" * 12 + b"]}")),
        ("1e-400", post("/predict", b'{"features": [1e-400' + b", 1" * 12 + b"]}")),
        ("NaN", post("/predict", b'{"features": [NaN' + b", 1" * 12 + b"]}")),
        ("Infinity", post("/predict", b'{"features": [Infinity' + b", 1" * 12 + b"]}")),
        ("-Infinity", post("/predict", b'{"features": [-Infinity' + b", 1" * 12 + b"]}")),
        ("NaN in echo", post("/echo", b'{"x": [NaN, Infinity]}')),
        ("huge int in echo", post("/echo", b'{"x": 1' + b"0" * 400 + b', "y": NaN}')),
        ("NaN in a dict of ints", post("/cellar", b'{"wines": [], "counts": {"a": NaN}}')),
        ("2**64 int", post("/cellar", b'{"wines": [], "counts": {"a": 18446744073709551616}}')),
        ("2**63 int", post("/cellar", b'{"wines": [], "counts": {"a": 9223372036854775808}}')),
        # deep nesting
        ("deep arrays", post("/predict", b"[" * 100_000 + b"]" * 100_000)),
        ("deep objects", post("/echo", b'{"a":' * 50_000 + b"1" + b"}" * 50_000)),
        ("deep features", post("/predict", b'{"features": ' + b"[" * 2000 + b"]" * 2000 + b"}")),
        ("deep echo 900", post("/echo", b"[" * 900 + b"]" * 900)),
        ("deep NaN", post("/echo", b"[" * 2000 + b"NaN" + b"]" * 2000)),
        # wrong types and shapes
        ("string features", post("/predict", b'{"features": "x"}')),
        ("object features", post("/predict", b'{"features": {}}')),
        ("bool features", post("/predict", b'{"features": [true, false]}')),
        ("null features", post("/predict", b'{"features": null}')),
        ("nested features", post("/predict", b'{"features": [[1.0]]}')),
        ("string numbers", post("/predict", json.dumps({"features": ["1"] * 13}).encode())),
        ("no features", post("/predict", b'{"features": []}')),
        ("12 features", post("/predict", json.dumps({"features": ROW[:12]}).encode())),
        ("1000 features", post("/predict", json.dumps({"features": [1.0] * 1000}).encode())),
        ("wrong note", post("/predict", json.dumps({"features": ROW, "note": 3}).encode())),
        ("wines not a list", post("/cellar", b'{"wines": 1}')),
        ("wines of junk", post("/cellar", b'{"wines": [1, "x", null, {"features": "y"}]}')),
        ("many {}s", post("/predict", b'{"features": [' + b",".join([b"{}"] * 300_000) + b"]}")),
        ("many bad wines", post("/cellar", b'{"wines": [' + b",".join([b"[]"] * 300_000) + b"]}")),
        ("long key", post("/predict", b'{"' + b"k" * 500_000 + b'": 1}')),
        # invalid UTF-8 and encodings
        ("invalid UTF-8", post("/predict", b'{"features": [1], "note": "\xff\xfe"}')),
        ("overlong UTF-8", post("/predict", b'{"note": "\xc0\xaf", "features": []}')),
        ("lone surrogate", post("/predict", b'{"note": "\\ud800", "features": []}')),
        ("UTF-16 body", post("/predict", '{"features": [1]}'.encode("utf-16"))),
        ("UTF-8 BOM", post("/predict", b"\xef\xbb\xbf" + GOOD)),
        ("latin-1 echo", post("/echo", b'{"x": "caf\xe9"}', "application/json; charset=latin-1")),
        # content types
        ("text/plain", post("/predict", GOOD, "text/plain")),
        ("no content type", post("/predict", GOOD, None)),
        ("form", post("/predict", b"features=1&features=2", "application/x-www-form-urlencoded")),
        (
            "multipart",
            post("/predict", b"--x\r\n\r\n1\r\n--x--\r\n", "multipart/form-data; boundary=x"),
        ),
        ("xml", post("/predict", b"<features>1</features>", "application/xml")),
        ("garbage content type", post("/predict", GOOD, "\x01;;;=")),
        # sizes
        ("just over 1 MiB", post("/predict", b'{"features": [' + b"1.0," * 270_000 + b"1]}")),
        ("1.9 MiB", post("/predict", b" " * (1900 * 1024) + GOOD)),
        (
            "Content-Length lies low",
            post("/predict", GOOD).replace(
                f"Content-Length: {len(GOOD)}".encode(), f"Content-Length: {len(GOOD) - 9}".encode()
            ),
        ),
        # broken HTTP
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        (
            "bad Content-Length",
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}",
        ),
        (
            "Content-Length and chunked",
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "bad chunk size",
            b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        ),
        (
            "huge header",
            b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n",
        ),
        ("bad header line", b"GET /livez HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n"),
        ("unknown path", post("/nope", GOOD)),
        ("wrong method", b"DELETE /predict HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("invented method", b"BREW /predict HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("bad percent path", b"GET /%ff%fe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        (
            "long URL",
            b"GET /livez?" + b"a" * 60_000 + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        ),
        (
            "bad request id",
            post("/predict", b"{").replace(b"Host: t", b"Host: t\r\nX-Request-Id: \x7f\xff", 1),
        ),
        ("HTTP/1.0", b"POST /predict HTTP/1.0\r\nContent-Length: 1\r\n\r\n{"),
    ]
    # 50 MB bodies, made one at a time
    yield "50 MB", post("/predict", b'{"features": [' + b"1.0," * 13_107_200 + b"1]}")
    yield (
        "50 MB chunked",
        b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n\r\n"
        + (b"100000\r\n" + b" " * 0x100000 + b"\r\n") * 50
        + b"0\r\n\r\n",
    )


def test_fuzz_corpus_gets_no_5xx_and_documented_json_errors(server: tuple[int, Path]) -> None:
    port, log_path = server
    stop, slow = threading.Event(), []  # slow clients hold connections throughout
    trickle = threading.Thread(target=_slow_clients, args=(port, stop, slow), daemon=True)
    trickle.start()
    started = time.monotonic()
    failures = []
    try:
        slowest_good = 0.0
        for what, raw in corpus():
            try:
                status, headers, body = request(port, raw)
                assert_documented_error(status, headers, body, what)
                assert len(body) < 64 * 1024, f"{what}: a {len(body)}-byte answer"
            except AssertionError as exc:
                failures.append(str(exc)[:400])
            slowest_good = max(slowest_good, good_request_time(port))
        assert slowest_good < PROMPT_S
    finally:
        stop.set()
        trickle.join(timeout=5)
        for s in slow:
            s.close()
    assert not failures, "\n".join(failures)
    assert time.monotonic() - started < 60
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_non_finite_and_out_of_range_numbers_name_the_field(server: tuple[int, Path]) -> None:
    port, _ = server
    for raw in (
        json.dumps({"features": [1.7e308] * 13}).encode(),
        b'{"features": [1' + b"0" * 39 + b", 1" * 12 + b"]}",
        b'{"features": [NaN' + b", 1" * 12 + b"]}",
        b'{"features": [-Infinity' + b", 1" * 12 + b"]}",
        b'{"features": [1e400' + b", 1" * 12 + b"]}",
    ):
        status, _, body = request(port, post("/predict", raw))
        assert status == 422, (raw[:40], body)
        problems = json.loads(body)["problems"]
        assert problems[0]["loc"] == "features.0", problems


def test_422_answer_is_bounded(server: tuple[int, Path]) -> None:
    """A 1 MB body of {}s used to produce a 21 MB answer: the first problems and a count."""
    port, _ = server
    raw = b'{"features": [' + b",".join([b"{}"] * 340_000) + b"]}"
    assert len(raw) < 1024 * 1024
    status, _, body = request(port, post("/predict", raw))
    assert status == 422 and len(body) < 8 * 1024, (status, len(body))
    answer = json.loads(body)
    assert len(answer["problems"]) == 20 and answer["more_problems"] == 340_000 - 20


def test_refusals_before_the_app_are_json(server: tuple[int, Path]) -> None:
    port, _ = server
    for raw, code in (
        (post("/predict", b" " * (3 * 1024 * 1024)), 413),  # above waitress's own limit
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n", 431),
    ):
        status, headers, body = request(port, raw)
        assert status == code, (status, body[:200])
        assert headers["content-type"] == "application/json", body[:200]
        assert isinstance(json.loads(body)["error"], str)
    status, _, body = request(port, post("/predict", b" " * (3 * 1024 * 1024)))
    assert json.loads(body) == {"error": "request body too large", "limit_bytes": 1024 * 1024}
