"""An op's retry backoff compiles into KFP's retry policy (the first wait and its factor)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hypermodel import hml
from hypermodel.kubeflow import CompileResult, compile_pipeline

from .conftest import dag_task


@hml.op(retries=3)
def default_op() -> int:
    return 1


@hml.op(retries=2, backoff="fixed", backoff_s=30)
def fixed_op() -> int:
    return 1


@hml.op(retries=2, backoff="none")
def none_op() -> int:
    return 1


@hml.op(retries=8, backoff="exponential", backoff_s=1, max_backoff_s=60)
def capped_op() -> int:
    return 1


@hml.op(retries=1, backoff_s=0.5)
def fractional_op() -> int:
    return 1


@pytest.fixture(scope="module")
def compiled() -> CompileResult:
    app = hml.HmlApp(
        "backoffs", image_url="registry.example/b:1", package_entrypoint="b", root="gs://b/b"
    )

    @hml.pipeline(app.pipelines)
    def backoffs():
        default_op()
        fixed_op()
        none_op()
        capped_op()
        fractional_op()

    return compile_pipeline(app, "backoffs")


@pytest.fixture(scope="module")
def ir(compiled: CompileResult) -> dict[str, Any]:
    return {"spec": next(d for d in yaml.safe_load_all(compiled.yaml) if d)}


def policy(ir: dict[str, Any], task: str) -> tuple[Any, ...]:
    p = dag_task(ir, task)["retryPolicy"]
    return p["maxRetryCount"], p["backoffDuration"], p["backoffFactor"], p["backoffMaxDuration"]


def test_backoff_becomes_the_kfp_retry_policy(ir: dict[str, Any]) -> None:
    # the default: 1s, doubling; KFP's one-hour retry window is left as it is
    assert policy(ir, "default-op") == (3, "1s", 2.0, "3600s")
    assert policy(ir, "fixed-op") == (2, "30s", 1.0, "3600s")
    assert policy(ir, "none-op") == (2, "0s", 1.0, "3600s")


def test_what_kubeflow_cannot_do_exactly_is_a_warning(compiled: CompileResult) -> None:
    capped = [w for w in compiled.warnings if "op 'capped_op'" in w]
    assert len(capped) == 1 and "cannot cap each wait at max_backoff_s=60" in capped[0]
    assert "its last wait there is 128s" in capped[0]
    fractional = [w for w in compiled.warnings if "op 'fractional_op'" in w]
    assert fractional == [
        "op 'fractional_op': Kubeflow waits whole seconds between attempts: "
        "backoff_s=0.5 becomes 1s there"
    ]
    assert not [w for w in compiled.warnings if "default_op" in w or "fixed_op" in w]
