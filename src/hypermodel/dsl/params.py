"""A pipeline's parameters, checked: what the local runner and a Kubeflow deploy both need."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .pipeline import Pipeline
from .types import check_value


def resolve_params(pipeline: Pipeline, given: dict[str, Any]) -> dict[str, Any]:
    """Pipeline parameters with defaults filled in; unknown, missing or mistyped ones raise."""
    values: dict[str, Any] = {}
    for key in given:
        if pipeline.param(key) is None:
            known = ", ".join(p.name for p in pipeline.params) or "none"
            raise UsageError(
                f"pipeline '{pipeline.name}': unknown parameter '{key}' (parameters: {known})"
            )
    for p in pipeline.params:
        if p.name in given:
            values[p.name] = check_value(
                given[p.name], p.type, f"pipeline '{pipeline.name}' parameter '{p.name}'"
            )
        elif p.required:
            raise UsageError(
                f"pipeline '{pipeline.name}': parameter '{p.name}' is required ({p.option})"
            )
        else:
            values[p.name] = p.default
    return values
