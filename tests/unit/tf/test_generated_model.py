"""`hml new model`'s code trains, exports with lineage and serves as generated (needs TF).

The generated project's own model test runs here with this interpreter (which has
TensorFlow), so the stubs are checked end to end, not only compiled.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tests.support import unavailable


def test_generated_model_trains_exports_and_serves(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        unavailable("TensorFlow is not installed (pip install 'hypermodel[tf]')")
    hml = str(Path(sys.executable).parent / "hml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HML_")}
    steps = [
        ["project", "Meters", "--directory", str(tmp_path)],
        ["data-model", "Reading", "readingId:int:id", "x:float", "y:float", "label:float"],
        ["data-model", "Estimate", "readingId:int:id", "value:float"],
        ["model", "Estimator", "Reading", "Estimate", "--block", "Hidden"],
    ]
    cwd = tmp_path
    for step in steps:
        subprocess.run([hml, "new", *step], cwd=cwd, env=env, check=True, capture_output=True)
        cwd = tmp_path / "meters"
    env["PYTHONPATH"] = str(cwd / "src")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_model_estimator.py",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "1 passed" in out.stdout
