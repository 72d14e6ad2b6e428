"""The HTML report renders in a real headless Chromium: a non-empty screenshot, no JS errors."""

from __future__ import annotations

import base64
import re
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.report import render
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore
from tests.support import unavailable

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
PNG_DOT = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _chromium() -> str:
    if not CHROMIUM.exists():
        unavailable(
            "Debian's chromium is not installed at /usr/bin/chromium (run `make test-infra`)"
        )
    return str(CHROMIUM)


def _report(tmp_path: Path) -> Path:
    storage = LocalStorage(tmp_path / "bucket")
    img = tmp_path / "plot.png"
    img.write_bytes(PNG_DOT)
    for name, lr in (("a", 0.1), ("b", 0.03)):
        run = Run(f"chromium-{name}", storage=storage)
        run.add_config({"lr": lr})
        for step in range(100):
            run.add_metrics("loss", 1 / (1 + lr * step), step)
            run.add_metrics("acc", 1 - 1 / (2 + lr * step), step)
        run.add_artifact(img)
        run.add_lineage(inputs=[{"kind": "dataset", "name": "wines", "checksum": "c0ffee"}])
        run.completed()
        run.close()
    page = tmp_path / "report.html"
    page.write_text(render(RunStore(storage), ["chromium-a", "chromium-b"]))
    return page


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        unavailable("chromium did not finish within 120 s")


def _pixels(png: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the set of distinct pixels of an 8-bit RGB/RGBA PNG (stdlib only)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = {2: 3, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    seen: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        ftype, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        if row % 8 == 0:  # sampling rows keeps this fast and is plenty to see a drawn page
            seen.update(bytes(line[i : i + 3]) for i in range(0, stride, bpp * 4))
        prev = line
    return width, height, seen


def test_report_screenshot_is_drawn(tmp_path: Path) -> None:
    page = _report(tmp_path)
    shot = tmp_path / "shot.png"
    proc = _run(
        [f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()], tmp_path / "profile1"
    )
    assert shot.exists(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert len(data) > 10_000
    width, height, colours = _pixels(data)
    assert (width, height) == (1200, 1400)
    assert len(colours) > 20  # text, plot lines in several colours, tables: far from a blank page


def test_report_runs_without_console_errors(tmp_path: Path) -> None:
    page = _report(tmp_path)
    proc = _run(
        ["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()], tmp_path / "profile2"
    )
    dom = proc.stdout
    assert 'data-ready="1"' in dom, "the report's script did not run to its end"
    errors = re.search(r'<div id="hml-errors">(.*?)</div>', dom, re.S)
    assert errors is not None and errors.group(1).strip() == ""
    console = [
        line
        for line in proc.stderr.splitlines()
        if "CONSOLE" in line and ("Error" in line or "error" in line)
    ]
    assert console == []
    assert dom.count("<polyline") == 4  # two metrics x two runs
