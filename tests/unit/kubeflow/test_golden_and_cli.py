"""The demo's compiled YAML against the committed golden file; the CLI commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hypermodel.errors import UsageError
from tests.golden.regenerate import GOLDEN, compile_demo
from tests.support import REPO, git_repo, require_module

from .apps import make_app


@pytest.fixture(autouse=True)
def outside_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile and deploy refuse a dirty git tree: run them outside the developer's own."""
    monkeypatch.chdir(tmp_path)


def test_compile_and_deploy_refuse_a_dirty_tree_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "code"
    git_repo(work, {"ops.py": "x = 1\n"})
    monkeypatch.chdir(work)
    app, out = make_app(), tmp_path / "out.yaml"
    clean = CliRunner().invoke(app.cli(), ["pipelines", "scoring", "compile", "-o", str(out)])
    assert clean.exit_code == 0, clean.output
    out.unlink()
    (work / "ops.py").write_text("x = 2\n")  # uncommitted
    for argv in (
        ["compile", "-o", str(out)],
        ["deploy-dev", "--dry-run", "--host", "http://127.0.0.1:9"],
        ["deploy-prod", "--dry-run", "--host", "http://127.0.0.1:9"],
    ):
        refused = CliRunner().invoke(app.cli(), ["pipelines", "scoring", *argv])
        assert isinstance(refused.exception, UsageError), refused.output
        message = str(refused.exception)
        assert "uncommitted changes (1 file(s))" in message and message.endswith("--force")
    assert not out.exists()
    forced = CliRunner().invoke(
        app.cli(), ["pipelines", "scoring", "compile", "-o", str(out), "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert "uncommitted changes (--force)" in forced.output and out.is_file()


def test_demo_compiles_to_the_golden_yaml() -> None:
    require_module("wines")
    compiled = compile_demo()
    assert compiled == GOLDEN.read_text(), (
        "compiled demo differs from tests/golden/wines.yaml: run `make golden` and review"
    )


def test_golden_yaml_loads_with_kfp() -> None:
    from kfp import components

    component = components.load_component_from_file(str(GOLDEN))
    assert set(component.component_spec.inputs) == {"n_estimators", "max_depth", "test_fraction"}
    spec = next(yaml.safe_load_all(GOLDEN.read_text()))
    assert set(spec["root"]["dag"]["tasks"]) == {"load", "profile", "split", "train", "evaluate"}


def test_cli_compile_writes_yaml_and_prints_warnings(tmp_path: Path) -> None:
    app = make_app(root=str(tmp_path / "bucket"))
    out = tmp_path / "out" / "scoring.yaml"
    result = CliRunner().invoke(app.cli(), ["pipelines", "scoring", "compile", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"compiled pipeline 'scoring' (5 ops) to {out}" in result.output
    assert "warning: the app's root" in result.output
    assert "comp-score" in out.read_text()


def test_cli_deploy_prod_dry_run_sends_nothing_and_shows_the_schedule(tmp_path: Path) -> None:
    app = make_app()
    result = CliRunner().invoke(
        app.cli(),
        [
            "pipelines",
            "scoring",
            "deploy-prod",
            "--dry-run",
            "--host",
            "http://127.0.0.1:9",
            "--token",
            "tok-123",
            "-p",
            "count=7",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "dry run: nothing is sent to http://127.0.0.1:9" in result.output
    assert '"cron": "0 30 2 * * *"' in result.output and '"max_concurrency": 1' in result.output
    assert '"parameters": {"count": 7}' in result.output
    assert "five fields" in result.output  # the conversion note
    assert "tok-123" not in result.output


def test_cli_deploy_rejects_unknown_params_and_missing_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HML_KFP_HOST", raising=False)
    app = make_app()
    bad = CliRunner().invoke(
        app.cli(), ["pipelines", "scoring", "deploy-dev", "-p", "nope=1", "--dry-run"]
    )
    assert bad.exit_code != 0 and "use NAME=VALUE with a parameter of 'scoring'" in str(
        bad.exception
    )
    nohost = CliRunner().invoke(app.cli(), ["pipelines", "scoring", "deploy-dev"])
    assert nohost.exit_code != 0 and "no Kubeflow host" in str(nohost.exception)


def test_help_does_not_import_kfp() -> None:
    code = (
        "import sys\n"
        "from tests.unit.kubeflow.apps import app\n"
        "try:\n    app.start(['pipelines', 'scoring', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('KFP_LOADED' if 'kfp' in sys.modules else 'KFP_ABSENT', file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "deploy-prod" in proc.stdout and "compile" in proc.stdout
    assert "KFP_ABSENT" in proc.stderr, proc.stderr


def test_hml_arg_parses_typed_values_and_rejects_unknown_names(tmp_path: Path) -> None:
    app = make_app(root=str(tmp_path / "bucket"))
    cli = app.cli()
    ok = CliRunner().invoke(
        cli,
        [
            "pipelines",
            "scoring",
            "run",
            "passed",
            "--value",
            "-1.5",
            "--hml-arg",
            "strict",
            "false",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip().splitlines()[-1] == "true"  # strict=false parsed as a real bool
    bad = CliRunner().invoke(
        cli,
        ["pipelines", "scoring", "run", "passed", "--value", "1", "--hml-arg", "strict", "maybe"],
    )
    assert bad.exit_code != 0 and "'maybe' is not a valid bool" in str(bad.exception)
    unknown = CliRunner().invoke(
        cli, ["pipelines", "scoring", "run", "passed", "--value", "1", "--hml-arg", "nope", "1"]
    )
    assert unknown.exit_code != 0 and "has no argument 'nope'" in str(unknown.exception)
