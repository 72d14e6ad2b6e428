"""The HTML report is self-contained: inline SVG plots, data-URI images, the lineage graph."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.report import lineage_graph, render
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore

# a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _two_runs(storage: LocalStorage, tmp_path: Path) -> list[str]:
    img = tmp_path / "confusion.png"
    img.write_bytes(PNG)
    model = tmp_path / "model.pkl"
    model.write_bytes(b"m")
    for name, lr in (("run-a", 0.1), ("run-b", 0.01)):
        run = Run(name, storage=storage)
        run.add_config({"lr": lr, "layers": 2})
        for step in range(50):
            run.add_metrics("train/loss", 1.0 / (1 + step * lr), step)
        run.add_artifact(img)
        run.add_lineage(inputs=[{"kind": "dataset", "name": "wines", "checksum": "abc123"}])
        run.add_mlmodel(model, f"clf-{name}", "1")
        run.set_note("<script>alert(1)</script>")
        run.completed()
        run.close()
    return ["run-a", "run-b"]


def test_report_is_self_contained(storage: LocalStorage, tmp_path: Path) -> None:
    page = render(RunStore(storage), _two_runs(storage, tmp_path))
    assert page.count("<polyline") == 2  # one series per run in the one metric plot
    assert page.count("data:image/png;base64,") == 2
    # no external resource of any kind
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    assert (
        "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    )
    assert "config.lr" in page and "class='diff'" in page
    assert "id='hml-errors'" in page


def test_lineage_links_datasets_ops_models_and_commits(
    storage: LocalStorage, tmp_path: Path
) -> None:
    ids = _two_runs(storage, tmp_path)
    records = [RunStore(storage).load(i) for i in ids]
    records[0].git["app"] = {"commit": "f" * 40}
    nodes, edges = lineage_graph(records)
    kinds = sorted(k for k, _ in nodes.values())
    assert kinds == ["commit", "dataset", "model", "model", "op", "op"]  # one shared dataset node
    assert ("dataset:abc123", "op:run-a") in edges and ("dataset:abc123", "op:run-b") in edges
    assert ("op:run-a", f"commit:{'f' * 40}") in edges
    assert any(a == "op:run-a" and b.startswith("model:") for a, b in edges)
    assert "<svg" in render(RunStore(storage), ids)


def test_models_published_by_an_op_join_its_lineage(storage: LocalStorage) -> None:
    """A reference.json written by hypermodel.serving names its pipeline run and task."""
    import orjson

    from hypermodel.tracking.run import Run as _Run

    _Run._create(
        "p-run.train",
        "demo",
        storage,
        {"task": "train", "pipeline": "p", "pipeline_run_id": "p-run"},
        owned=True,
    ).close()
    ref = {
        "name": "clf",
        "version": "3",
        "model_sha256": "d" * 64,
        "run_id": "p-run",
        "task": "train",
        "commit": "c" * 40,
        "datasets": ["e" * 40],
    }
    storage.write_bytes("models/clf/3/reference.json", orjson.dumps(ref))
    storage.write_bytes("models/other/1/reference.json", orjson.dumps({**ref, "task": "evaluate"}))
    record = RunStore(storage).load("p-run.train")
    assert record.outputs == [
        {"kind": "model", "name": "clf", "version": "3", "checksum": "d" * 64, "commit": "c" * 40}
    ]
    assert [i["checksum"] for i in record.inputs] == ["e" * 40]
    _nodes, edges = lineage_graph([record])
    assert (f"model:{'d' * 64}", f"commit:{'c' * 40}") in edges
    assert (f"dataset:{'e' * 40}", "op:p-run.train") in edges
