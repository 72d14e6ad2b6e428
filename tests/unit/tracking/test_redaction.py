"""Secret-looking op arguments and pipeline params never reach tracking data, run records,
`hml runs show/compare`, the HTML report or the runner's error messages."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from hypermodel import hml
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.dsl.types import check_value, parse_text
from hypermodel.errors import UsageError
from hypermodel.redact import is_secret_name, redact
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import RunStore

SECRET = "hunter2-s3cr3t"
TOKEN = "tok-9f8e7d"

app = hml.HmlApp(name="secretive")


@hml.op()
def connect(dbPassword: str, api_key: str, rows: int = 3, tokenizer: str = "bpe") -> dict:
    hml.current_run().add_config({"db": {"host": "db.local", "password": dbPassword}})
    # the op itself gets the real values: only what is recorded about it is redacted
    return {"rows": rows, "tokenizer": tokenizer, "real": [dbPassword, api_key] == [SECRET, TOKEN]}


@hml.pipeline(app.pipelines)
def leaky(db_password: str = SECRET, AUTH_TOKEN: str = TOKEN, max_tokens: int = 64):
    connect(dbPassword=db_password, api_key=AUTH_TOKEN, rows=max_tokens)


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "db_password",
        "dbPassword",
        "DB-PASSWD",
        "client_secret",
        "secrets",
        "token",
        "AUTH_TOKEN",
        "api_key",
        "apiKey",
        "APIKey",
        "apikey",
        "gcp_credentials",
        "credential",
        "private_key",
        "AWS_SECRET_ACCESS_KEY",
        "aws_access_key_id",
        "ssh.passphrase",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["tokenizer", "max_tokens", "n_estimators", "key", "sort_key", "keyword", "secretary", "pwdx"],
)
def test_names_that_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


def test_redact_nested_values_and_leaves_unset_secrets_visible() -> None:
    data = {"a": 1, "token": "x", "db": {"password": "y", "port": 5}, "l": [{"apiKey": "z"}]}
    assert redact(data) == {
        "a": 1,
        "token": "***",
        "db": {"password": "***", "port": 5},
        "l": [{"apiKey": "***"}],
    }
    assert redact({"password": None}) == {"password": None}
    assert data["token"] == "x"  # a copy: the op still gets the real value


def _every_file_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_a_pipeline_run_records_no_secret_anywhere_in_the_bucket(hml_root: Path) -> None:
    app.configure(root=str(hml_root))
    result = app.pipelines.run_all("leaky", workers=0)
    assert result.ok, result.failed
    assert result.outputs["connect"] == {"rows": 64, "tokenizer": "bpe", "real": True}
    stored = _every_file_under(hml_root)
    assert SECRET.encode() not in stored and TOKEN.encode() not in stored

    record = RunStore(LocalStorage(hml_root)).load(f"{result.run_id}.connect")
    assert record.params == {"dbPassword": "***", "api_key": "***", "rows": 64}
    assert record.meta["pipeline_params"] == {
        "db_password": "***",
        "AUTH_TOKEN": "***",
        "max_tokens": 64,
    }
    assert record.config == {"db": {"host": "db.local", "password": "***"}}
    local_record = orjson.loads((hml_root / "runs" / result.run_id / "run.json").read_bytes())
    assert local_record["params"]["db_password"] == "***"
    assert local_record["params"]["max_tokens"] == 64


def test_runs_show_compare_and_report_redact_runs_recorded_in_the_clear(
    hml_root: Path, tmp_path: Path
) -> None:
    """A run written before redaction existed (or by another writer) is redacted on reading."""
    storage = LocalStorage(hml_root)
    run = Run("old-run", storage=storage)
    # what an older version wrote: the raw event, bypassing add_params' redaction
    run._event("params", "test", params={"api_token": SECRET, "lr": 0.1})
    run._event("meta", "test", key="password", value=SECRET)
    run.close()
    runner = CliRunner()
    cli = build_hml_cli()
    for args in (["runs", "show", "old-run"], ["runs", "compare", "old-run", "old-run"]):
        out = runner.invoke(cli, ["--root", str(hml_root), *args], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        assert SECRET not in out.output and "***" in out.output and "0.1" in out.output
    page = tmp_path / "report.html"
    out = runner.invoke(
        cli, ["--root", str(hml_root), "runs", "report", "old-run", "-o", str(page)]
    )
    assert out.exit_code == 0, out.output
    html = page.read_text()
    assert SECRET not in html and "***" in html


def test_run_api_redacts_params_config_and_meta(storage: LocalStorage) -> None:
    with Run("api-run", storage=storage) as run:
        run.add_params({"openai_api_key": SECRET, "epochs": 3})
        run.add_config(hml.Config(service=hml.Config(token=SECRET, url="https://x")))
        run.add_meta("credentials", {"user": "u", "pass": SECRET})
    assert SECRET.encode() not in _every_file_under(Path(storage.root))
    record = RunStore(storage).load("api-run")
    assert record.params == {"openai_api_key": "***", "epochs": 3}
    assert record.config == {"service": {"token": "***", "url": "https://x"}}
    assert record.metas == {"credentials": "***"}


def test_type_errors_do_not_quote_secret_values() -> None:
    with pytest.raises(UsageError) as raised:
        check_value(SECRET, int, "pipeline 'p' parameter 'api_token'")
    assert SECRET not in str(raised.value) and "got str '***'" in str(raised.value)
    with pytest.raises(UsageError) as raised:
        parse_text(SECRET, int, "op 'train' argument 'db_password'")
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None
    with pytest.raises(UsageError, match="'abc' is not a valid int"):
        parse_text("abc", int, "op 'train' argument 'rows'")  # ordinary values are quoted


def test_run_all_with_a_mistyped_secret_param(hml_root: Path) -> None:
    app.configure(root=str(hml_root))
    with pytest.raises(UsageError) as raised:
        app.pipelines.run_all("leaky", {"max_tokens": "many", "db_password": 12345678})
    message = str(raised.value)
    assert "12345678" not in message and "parameter 'db_password'" in message
