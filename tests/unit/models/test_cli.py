"""``hml models``: list, show, promote, alias, rollback, history, through click and once through
the installed ``hml`` console script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.storage import Storage


def _root(storage: Storage) -> str:
    return storage.url.removeprefix("file://")


def hml(storage: Storage, *args: str) -> Any:
    result = CliRunner().invoke(
        build_hml_cli(), ["--root", _root(storage), *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def fails(storage: Storage, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Through the CLI's error boundary: (exit code, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run_cli(build_hml_cli(), ["--root", _root(storage), *args], "hml")
    return int(exited.value.code or 0), capsys.readouterr().err


def test_promote_show_rollback_workflow(published: Storage) -> None:
    out = hml(published, "models", "promote", "clf", "v2", "--reason", "better accuracy")
    assert out.strip().startswith("clf production: (unset) -> v2 (entry 1, by ")
    out = hml(published, "models", "promote", "clf", "v3", "--expect", "v2")
    assert "clf production: v2 -> v3 (entry 2" in out
    hml(published, "models", "alias", "clf", "staging", "v1")

    out = hml(published, "models", "list")
    assert out.splitlines()[0].split() == ["MODEL", "VERSIONS", "LATEST", "ALIASES"]
    assert out.splitlines()[1].split() == [
        "clf",
        "3",
        "v3",
        "production",
        "->",
        "v3,",
        "staging",
        "->",
        "v1",
    ]
    out = hml(published, "models", "list", "clf")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "latest, production" in rows["v3"] and "staging" in rows["v1"]
    assert "accuracy=0.6" in rows["v1"]

    out = hml(published, "models", "show", "clf@production")
    assert re.search(r"^version +v3  \[production\]$", out, re.M)
    assert "aliases:\n  production -> v3\n  staging -> v1" in out
    assert "lineage:\n  model clf v3" in out
    assert re.search(r"^metric accuracy +0\.8$", out, re.M)

    out = hml(published, "models", "rollback", "clf", "production")
    assert "clf production: v3 -> v2 (entry 3" in out
    out = hml(published, "models", "history", "clf", "production", "--format", "json")
    history = json.loads(out)
    assert [(e["version"], e["previous"]) for e in history] == [
        ("v2", None),
        ("v3", "v2"),
        ("v2", "v3"),
    ]
    assert history[0]["reason"] == "better accuracy"
    assert "rollback of entry 2" in history[2]["reason"]

    out = hml(published, "models", "alias", "clf", "staging", "--delete", "--format", "json")
    assert json.loads(out)["version"] is None
    assert json.loads(hml(published, "models", "list", "--format", "json")) == [
        {
            "name": "clf",
            "versions": 3,
            "latest": "v3",
            "newest": "v3",
            "aliases": {"production": "v2"},
        }
    ]


def test_json_output_of_list_and_show(published: Storage) -> None:
    hml(published, "models", "promote", "clf", "v1", "--to", "canary")
    versions = json.loads(hml(published, "models", "list", "clf", "--format", "json"))
    assert [(v["version"], v["latest"], v["aliases"]) for v in versions] == [
        ("v1", False, ["canary"]),
        ("v2", False, []),
        ("v3", True, []),
    ]
    assert versions[0]["key"] == "models/clf/v1/reference.json"
    shown = json.loads(hml(published, "models", "show", "clf@canary", "--format", "json"))
    assert shown["reference"]["version"] == "v1" and shown["reference"]["kind"] == "joblib"
    assert shown["aliases"] == {"canary": "v1"}
    assert shown["lineage"]["kind"] == "model" and shown["lineage"]["version"] == "v1"
    latest = json.loads(hml(published, "models", "show", "clf", "--format", "json"))
    assert latest["reference"]["version"] == "v3"


def test_errors_name_the_thing_and_what_exists(
    published: Storage, capsys: pytest.CaptureFixture[str]
) -> None:
    hml(published, "models", "promote", "clf", "v1")
    code, err = fails(published, capsys, "models", "show", "nope")
    assert code == 1 and "model 'nope' has never been published" in err and "there: clf" in err
    code, err = fails(published, capsys, "models", "show", "clf@staging")
    assert "no version or alias 'staging'" in err and "v1, v2, v3" in err
    assert "production -> v1" in err
    code, err = fails(published, capsys, "models", "promote", "clf", "v9")
    assert "has no version 'v9'" in err and "v1, v2, v3" in err
    code, err = fails(published, capsys, "models", "rollback", "clf", "staging")
    assert "no alias 'staging' set" in err and "promote clf VERSION --to staging" in err
    code, err = fails(published, capsys, "models", "promote", "clf", "v2", "--expect", "v3")
    assert "alias 'production' of model 'clf' is at v1, not v3" in err and "--expect v1" in err
    code, err = fails(published, capsys, "models", "alias", "clf", "latest", "v1")
    assert code == 2 and "alias name 'latest' is not allowed" in err
    code, err = fails(published, capsys, "models", "alias", "clf", "staging")
    assert code == 2 and "give either VERSION or --delete" in err
    for line in err.strip().splitlines():
        assert line.startswith("error: ")


def test_the_hml_console_script(published: Storage, tmp_path: Path) -> None:
    hml_script = Path(sys.executable).parent / "hml"
    root = _root(published)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(hml_script), "--root", root, "models", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )

    promoted = run("promote", "clf", "v2", "--format", "json")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["version"] == "v2"
    shown = run("show", "clf@production")
    assert shown.returncode == 0 and re.search(r"^version +v2  \[production\]$", shown.stdout, re.M)
    refused = run("promote", "clf", "v3", "--expect", "v1")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: alias 'production' of model 'clf' is at v2")
    assert "Traceback" not in refused.stderr
