"""The demo pipeline twice in a row, as a user iterates: no renames, no --force, no delete.
Each run writes new versions of the same dataset names, and the model of the second run is
trained on the second run's data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import require_module

require_module("wines")


def test_the_demo_runs_twice_in_a_row(tmp_path: Path) -> None:
    wines = Path(sys.executable).parent / "wines"
    root = tmp_path / "bucket"

    def run_all() -> str:
        done = subprocess.run(
            [str(wines), "--root", str(root), "pipelines", "wines", "run-all", "-q"],
            cwd=tmp_path,  # like a user's shell; not inside a git checkout
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        (run,) = [p for p in (root / "runs").iterdir() if p.name not in seen]
        seen.add(run.name)
        return run.name

    seen: set[str] = set()
    first, second = run_all(), run_all()
    for name in ("wines", "train", "test"):
        versions = sorted(p.parent.name for p in (root / "wines").glob(f"main@*/{name}/{name}.chk"))
        assert len(versions) == 2, (name, versions)

    def output(run: str, task: str) -> dict:  # type: ignore[type-arg]
        return json.loads((root / "runs" / run / "outputs" / f"{task}.json").read_text())["output"]

    split_1, split_2 = output(first, "split"), output(second, "split")
    assert split_1["train"] != split_2["train"]  # two versions of "train"...
    assert split_1["train"].split("@")[0] == split_2["train"].split("@")[0] == "train"
    model = output(second, "train")
    reference = json.loads(
        (root / "models" / "wine-classifier" / model["version"] / "reference.json").read_text()
    )
    assert reference["datasets"] == [split_2["train_checksum"]]  # ...the model names its own
