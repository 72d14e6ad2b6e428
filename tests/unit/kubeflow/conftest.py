from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hypermodel.kubeflow import CompileResult, compile_pipeline

from .apps import make_app


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> CompileResult:
    path = tmp_path_factory.mktemp("kfp") / "scoring.yaml"
    return compile_pipeline(make_app(), "scoring", path)


@pytest.fixture(scope="module")
def ir(compiled: CompileResult) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(compiled.yaml) if d]
    assert len(docs) == 2, "expected the pipeline spec and a platform spec"
    return {
        "spec": docs[0],
        "platform": docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"],
    }


def executor(ir: dict[str, Any], task: str) -> dict[str, Any]:
    return ir["spec"]["deploymentSpec"]["executors"][f"exec-{task}"]["container"]  # type: ignore[no-any-return]


def dag_task(ir: dict[str, Any], task: str) -> dict[str, Any]:
    return ir["spec"]["root"]["dag"]["tasks"][task]  # type: ignore[no-any-return]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path
