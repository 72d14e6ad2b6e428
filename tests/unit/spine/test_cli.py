from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.support import REPO


def cli(*args: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.unit.spine.cli_app", "--root", str(root), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_pipelines_and_ops(tmp_path: Path) -> None:
    out = cli("pipelines", "--help", root=tmp_path)
    assert out.returncode == 0 and all(n in out.stdout for n in ("basic", "parallel", "failing"))
    out = cli("pipelines", "basic", "--help", root=tmp_path)
    assert all(n in out.stdout for n in ("run", "run-all", "show"))
    out = cli("pipelines", "basic", "run", "--help", root=tmp_path)
    assert all(n in out.stdout for n in ("load", "train", "train-2", "combine"))
    out = cli("pipelines", "basic", "run", "train", "--help", root=tmp_path)
    assert "--dataset" in out.stdout and "stored output of op 'load'" in out.stdout


def test_run_one_op_then_downstream(tmp_path: Path) -> None:
    out = cli("pipelines", "basic", "run", "load", "--rows", "10", root=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "data-10"
    out = cli("pipelines", "basic", "run", "train", "--depth", "2", root=tmp_path)
    assert out.returncode == 0, out.stderr
    assert orjson.loads(out.stdout) == {
        "attempt": 1,
        "dataset": "data-10",
        "depth": 2,
        "task": "train",
    }


def test_output_file_for_kubeflow(tmp_path: Path) -> None:
    target = tmp_path / "out" / "data"
    out = cli(
        "pipelines",
        "basic",
        "run",
        "load",
        "--rows",
        "3",
        "--hml-output-file",
        str(target),
        root=tmp_path,
    )
    assert out.returncode == 0 and target.read_text() == "data-3"
    cli("pipelines", "basic", "run", "train", "--hml-output-file", str(target), root=tmp_path)
    assert orjson.loads(target.read_text())["dataset"] == "data-3"


def _one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    _one_line_error(
        cli("pipelines", "basic", "run", "load", "--rows", "many", root=tmp_path),
        "run load",
        "--rows",
        "'many' is not a valid integer",
    )
    _one_line_error(
        cli("pipelines", "basic", "run", "load", "--colour", "red", root=tmp_path),
        "run load",
        "No such option",
        "--colour",
    )
    _one_line_error(
        cli("pipelines", "basic", "run", "train", root=tmp_path),
        "op 'train' argument 'dataset' comes from op 'load'",
        "--dataset",
    )
    _one_line_error(
        cli("pipelines", "basic", "run-all", "--depth", "1.5", root=tmp_path), "run-all", "--depth"
    )
    _one_line_error(cli("pipelines", "nope", "run-all", root=tmp_path), "No such command 'nope'")


def test_run_all_success_summary(tmp_path: Path) -> None:
    out = cli("pipelines", "basic", "run-all", "--depth", "5", "--workers", "2", root=tmp_path)
    assert out.returncode == 0, out.stderr
    for column in ("op", "status", "duration", "attempts", "cache hit"):
        assert column in out.stdout
    assert "combine: 6.0" in out.stdout  # the leaf output, in full
    again = cli("pipelines", "basic", "run-all", "--depth", "5", "-q", root=tmp_path)
    assert "cached" in again.stdout


def test_run_all_failure_shows_traceback_once_and_exits_non_zero(tmp_path: Path) -> None:
    out = cli("pipelines", "failing", "run-all", root=tmp_path)
    assert out.returncode == 1
    assert out.stderr.count("Traceback (most recent call last)") == 1
    assert "ValueError: broken on purpose" in out.stderr
    # the user's frame is there, the runner's own frames that lead into the op are not
    assert 'tests/unit/spine/apps.py", line' in out.stderr
    assert "hypermodel/local/execute.py" not in out.stderr
    skipped = next(
        line for line in out.stderr.splitlines() if line.startswith("skipped because of it:")
    )
    assert "after_broken" in skipped
    assert "not applied locally (applied on Kubeflow): cpu=2, memory=4Gi" in out.stderr
    quiet = cli("pipelines", "failing", "run-all", "-q", root=tmp_path)
    assert quiet.returncode == 1
    assert quiet.stderr.count("not applied locally (applied on Kubeflow): cpu=2, memory=4Gi") == 1


def test_show_and_hml_version(tmp_path: Path) -> None:
    out = cli("pipelines", "basic", "show", root=tmp_path)
    assert "train-2 <- load [cache]" in out.stdout and "cron 0 0 2 * * *" in out.stdout
    hml = Path(sys.executable).parent / "hml"
    version = subprocess.run([str(hml), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("hypermodel ")


def test_import_stays_light() -> None:
    code = (
        "import sys; import tests.unit.spine.cli_app as m; m.app.cli(); "
        "heavy = [n for n in ('kfp','kubernetes','flask','numpy','sklearn','tensorflow','torch','rich','pandas') "
        "if n in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_exit_codes_hold_under_click_testing(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from . import apps

    app = apps.make_app("spine").configure(root=str(tmp_path))
    runner = CliRunner()
    failed = runner.invoke(app.cli(), ["pipelines", "failing", "run", "broken"])
    assert failed.exit_code == 1 and "broken on purpose" in failed.output
    ok = runner.invoke(app.cli(), ["pipelines", "failing", "run", "load", "--rows", "2"])
    assert ok.exit_code == 0 and ok.output.strip().endswith("data-2")


def test_a_pod_whose_image_runs_other_code_than_compiled_warns(tmp_path: Path) -> None:
    from tests.unit.spine.apps import load

    mine = load.code_fingerprint[:16]
    same = cli("pipelines", "basic", "run", "load", "--hml-code", mine, root=tmp_path)
    assert same.returncode == 0 and "other code" not in same.stderr
    other = cli("pipelines", "basic", "run", "load", "--hml-code", "0" * 16, root=tmp_path)
    assert other.returncode == 0
    assert f"compiled {'0' * 16}, here {mine}" in other.stderr


def test_bad_json_for_a_list_or_dict_op_argument_is_one_line_exit_2(tmp_path: Path) -> None:
    run = ("pipelines", "structured", "run", "tally")
    where = "spine pipelines structured run tally: Invalid value for"
    _one_line_error(
        cli(*run, "--items", "[1,2", root=tmp_path),
        where,
        "'--items': '[1,2' is not a valid JSON list",
    )
    _one_line_error(  # valid JSON, but a dict where a list is declared
        cli(*run, "--items", '{"a":1}', root=tmp_path),
        where,
        """'--items': '{"a":1}' is not a valid JSON list""",
    )
    _one_line_error(
        cli(*run, "--items", "[1]", "--weights", "[1]", root=tmp_path),
        where,
        "'--weights': '[1]' is not a valid JSON dict",
    )
    _one_line_error(
        cli(*run, "--items", "[1]", "--weights", '{"a":', root=tmp_path),
        where,
        """'--weights': '{"a":' is not a valid JSON dict""",
    )
    # what a compiled Kubeflow component passes (--hml-arg NAME VALUE) is checked the same way
    _one_line_error(
        cli(*run, "--hml-arg", "items", "[1,2", root=tmp_path),
        "op 'tally' argument 'items': '[1,2' is not a valid list",
    )
    _one_line_error(
        cli(*run, "--hml-arg", "items", '{"a":1}', root=tmp_path),
        "op 'tally' argument 'items': expected list, got dict {'a': 1}",
    )
    _one_line_error(
        cli(*run, "--items", "[1]", "--hml-arg", "weights", "[1]", root=tmp_path),
        "op 'tally' argument 'weights': expected dict, got list [1]",
    )
    ok = cli(*run, "--items", "[1,2]", "--weights", '{"a":1}', root=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert orjson.loads(ok.stdout) == {"n": 2, "weights": {"a": 1}}


def test_bad_json_for_a_list_or_dict_pipeline_parameter_is_one_line_exit_2(
    tmp_path: Path,
) -> None:
    run_all = ("pipelines", "structured", "run-all", "-q")
    where = "spine pipelines structured run-all: Invalid value for"
    _one_line_error(
        cli(*run_all, "--items", "[1,2", "--weights", "{}", root=tmp_path),
        where,
        "'--items': '[1,2' is not a valid JSON list",
    )
    _one_line_error(
        cli(*run_all, "--items", '{"a":1}', "--weights", "{}", root=tmp_path),
        where,
        """'--items': '{"a":1}' is not a valid JSON list""",
    )
    _one_line_error(
        cli(*run_all, "--items", "[1]", "--weights", "[1]", root=tmp_path),
        where,
        "'--weights': '[1]' is not a valid JSON dict",
    )
    assert not (tmp_path / "runs").exists()  # nothing ran
    ok = cli(*run_all, "--items", "[1,2]", "--weights", '{"a":1}', root=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert 'tally: {\n  "n": 2,\n  "weights": {\n    "a": 1\n  }\n}' in ok.stdout


def test_kubeflow_ids_reach_the_op_context_and_not_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from click.testing import CliRunner

    from hypermodel import hml

    from . import apps

    monkeypatch.delenv("HML_KFP_RUN_ID", raising=False)
    monkeypatch.delenv("HML_KFP_TASK_ID", raising=False)
    app = apps.make_app("spine").configure(root=str(tmp_path))

    @hml.pipeline(app.pipelines)
    def ids():
        apps.kfp_ids()

    runner = CliRunner()
    argv = ["pipelines", "ids", "run", "kfp_ids"]
    inside = runner.invoke(app.cli(), [*argv, "--hml-run-id", "R-123", "--hml-task-id", "T-456"])
    assert inside.exit_code == 0, inside.output
    assert orjson.loads(inside.stdout) == {
        "kfp_run_id": "R-123",
        "kfp_task_id": "T-456",
        "run_id": "R-123",
    }
    assert "HML_KFP_RUN_ID" not in os.environ and "HML_KFP_TASK_ID" not in os.environ
    plain = runner.invoke(app.cli(), argv)
    assert plain.exit_code == 0, plain.output
    seen = orjson.loads(plain.stdout)
    assert seen["kfp_run_id"] is None and seen["kfp_task_id"] is None
    assert seen["run_id"].startswith("ids-")


def test_bad_json_for_a_secret_looking_option_does_not_quote_the_value() -> None:
    import click

    from hypermodel.cli.params import JsonType

    with pytest.raises(click.BadParameter) as secret:
        JsonType(dict).convert(
            '{"user": "u", "pw": "hunter2"', click.Option(["--db-password"]), None
        )
    assert "hunter2" not in str(secret.value)
    assert "'***' is not a valid JSON dict" in str(secret.value)
    with pytest.raises(click.BadParameter) as plain:
        JsonType(dict).convert('{"a":', click.Option(["--weights"]), None)
    assert """'{"a":' is not a valid JSON dict""" in str(plain.value)
