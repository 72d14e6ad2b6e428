"""`<app> inference ...` commands: routes, openapi, options, and the optional deploy command."""

from __future__ import annotations

import importlib.machinery
import json
import sys
import types
from typing import Any

import click
import pytest
from click.testing import CliRunner

from hypermodel import hml
from hypermodel.cli import inference as inference_cli
from hypermodel.serving.model import ModelContainer


def _declare(app: hml.HmlApp) -> None:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("wine-clf"))

        @inference_app.route("/predict", model="wine-clf")
        def predict(payload: Any) -> Any:
            return payload


def test_routes_lists_builtin_and_declared(app: hml.HmlApp, published: ModelContainer) -> None:
    _declare(app)
    result = CliRunner().invoke(app.cli(), ["inference", "routes"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith("POST") and "/predict" in line and "model=wine-clf" in line
        for line in lines
    )
    for path in ("/livez", "/readyz", "/metrics", "/openapi.json"):
        assert any(f" {path} " in line for line in lines), path


def test_openapi_command(app: hml.HmlApp, published: ModelContainer) -> None:
    _declare(app)
    result = CliRunner().invoke(app.cli(), ["inference", "openapi"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "/predict" in json.loads(result.output)["paths"]


def test_run_commands_default_to_the_app_port(app: hml.HmlApp) -> None:
    group = inference_cli.inference_group(app)
    for name in ("run-prod", "run-dev"):
        command = group.commands[name]
        port = next(p for p in command.params if p.name == "port")
        assert port.default == app.inference_port
    threads = next(p for p in group.commands["run-prod"].params if p.name == "threads")
    assert threads.default == 8


def test_deploy_is_added_only_when_its_module_exists(
    app: hml.HmlApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference_cli, "_DEPLOY_MODULE", "hypermodel_tests_no_such_module")
    commands = inference_cli.inference_group(app).commands
    assert "deploy" not in commands and "promote" not in commands

    fake = types.ModuleType("hypermodel_tests_fake_deploy")
    fake.__spec__ = importlib.machinery.ModuleSpec("hypermodel_tests_fake_deploy", None)
    fake.deploy_command = lambda app: click.Command("deploy", callback=lambda: None)  # type: ignore[attr-defined]
    fake.promote_command = lambda app: click.Command("promote", callback=lambda: None)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hypermodel_tests_fake_deploy", fake)
    monkeypatch.setattr(inference_cli, "_DEPLOY_MODULE", "hypermodel_tests_fake_deploy")
    commands = inference_cli.inference_group(app).commands
    assert "deploy" in commands and "promote" in commands


def test_failing_init_is_one_line_on_the_cli(
    app: hml.HmlApp, capsys: pytest.CaptureFixture[str]
) -> None:
    @hml.inference(app.inference)
    def init(inference_app: hml.HmlInferenceApp) -> None:
        inference_app.load_model(ModelContainer("never-published"))

    with pytest.raises(SystemExit) as exit_info:
        app.start(["inference", "routes"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model 'never-published' has never been published")
    assert "Traceback" not in err
