"""Redaction covers the secret names people actually use and credentials inside URLs and DSNs
whatever the name; a plain env var never carries a secret into compiled YAML."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from hypermodel import hml
from hypermodel.dsl.config import ContainerConfig
from hypermodel.errors import DeclarationError, UsageError
from hypermodel.kubeflow import compile_pipeline
from hypermodel.redact import is_secret_name, redact, shown
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.store import RunStore

PW = "Pw-7f3k2-s3cr3t"


@pytest.mark.parametrize(
    "name",
    [
        "db-pass",
        "db_pass",
        "DB_PASS",
        "pwd",
        "db_pwd",
        "pw",
        "dsn",
        "DATABASE_DSN",
        "connection-string",
        "connectionString",
        "conn_str",
        "auth-header",
        "AUTH_HEADER",
        "jwt",
        "jwt_token",
        "bearer",
        "authorization",
        "session_cookie",
        "signing_key",
        "encryption_key",
        "AZURE_STORAGE_ACCOUNT_KEY",
    ],
)
def test_more_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["passes", "num_passes", "bypass", "compass", "pwdx", "sort_key", "cache_key"]
)
def test_still_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"postgres://u:{PW}@h/db", "postgres://u:***@h/db"),
        (f"postgresql://app:{PW}@db.internal:5432/x?sslmode=require", None),
        (f"mysql://u:p@ss{PW}@h/db", "mysql://u:***@h/db"),  # an '@' in the password
        (f"redis://:{PW}@cache:6379/0", "redis://:***@cache:6379/0"),
        (f"mongodb+srv://u:{PW}@cluster0.example.net/db", None),
        (f"host=h user=u password={PW} dbname=d", "host=h user=u password=*** dbname=d"),
        (f"Server=s;Database=d;User Id=u;Pwd={PW};", "Server=s;Database=d;User Id=u;Pwd=***;"),
        (f"https://api.example.com/v1?api_key={PW}&page=2", None),
        (f"Authorization: Bearer {PW}", "Authorization: Bearer ***"),
        (f"--db-pass={PW}", "--db-pass=***"),
    ],
)
def test_credentials_inside_values_are_masked_whatever_the_name(
    text: str, masked: str | None
) -> None:
    out = redact({"setting": text, "nested": [{"url": text}]})
    assert PW not in str(out)
    if masked is not None:
        assert out["setting"] == masked
    assert PW not in str(shown(text, "url"))


def test_values_without_credentials_are_kept() -> None:
    values = {
        "url": "https://example.com/a?b=c&page=2",
        "remote": "ssh://git@github.com/org/repo",
        "formula": "y = a*x + b",
        "note": "the basic idea, token by token",
    }
    assert redact(values) == values


SECRETIVE = hml.HmlApp(name="secretive-cli")


@hml.op()
def connect(dsn: str, db_pass: str, pwd: str, auth_header: str, jwt: str, bearer: str) -> int:
    return len(dsn + db_pass + pwd + auth_header + jwt + bearer)


@hml.pipeline(SECRETIVE.pipelines)
def leak(
    dsn: str = f"postgres://u:{PW}@h/db",
    db_pass: str = PW + "1",
    pwd: str = PW + "2",
    auth_header: str = PW + "3",
    jwt: str = PW + "4",
    bearer: str = PW + "5",
    connection_string: str = f"Server=s;Password={PW}6",
    url: str = f"https://x:{PW}7@host/",
):
    connect(dsn=dsn, db_pass=db_pass, pwd=pwd, auth_header=auth_header, jwt=jwt, bearer=bearer)


def _every_file_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def test_a_run_records_none_of_these_secrets(hml_root: Path) -> None:
    SECRETIVE.configure(root=str(hml_root))
    result = SECRETIVE.pipelines.run_all("leak", workers=0)
    assert result.ok, result.failed
    assert PW.encode() not in _every_file_under(hml_root)
    record = RunStore(LocalStorage(hml_root)).load(f"{result.run_id}.connect")
    assert record.params["dsn"] == "***" and record.meta["pipeline_params"]["url"] == (
        "https://x:***@host/"
    )
    local = orjson.loads((hml_root / "runs" / result.run_id / "run.json").read_bytes())
    assert local["params"]["url"] == "https://x:***@host/"


def test_resume_asks_again_for_a_value_recorded_masked(hml_root: Path) -> None:
    SECRETIVE.configure(root=str(hml_root))
    first = SECRETIVE.pipelines.run_all("leak", workers=0)
    with pytest.raises(UsageError, match=r"'url' was recorded with a credential masked"):
        SECRETIVE.pipelines.run_all(
            "leak",
            {
                "dsn": "d",
                "db_pass": "x",
                "pwd": "x",
                "auth_header": "x",
                "jwt": "x",
                "bearer": "x",
                "connection_string": "x",
            },
            workers=0,
            resume=first.run_id,
        )
    again = SECRETIVE.pipelines.run_all(
        "leak",
        {
            "dsn": "d",
            "db_pass": "x",
            "pwd": "x",
            "auth_header": "x",
            "jwt": "x",
            "bearer": "x",
            "connection_string": "x",
            "url": f"https://x:{PW}7@host/",  # the same value as recorded, masked
        },
        workers=0,
        resume=first.run_id,
    )
    assert again.ok


# -- with_env refuses to compile a secret into YAML ---------------------------------------------
@pytest.mark.parametrize(
    "name", ["API_TOKEN", "DB_PASSWORD", "db_pass", "JWT", "AWS_SECRET_ACCESS_KEY"]
)
def test_with_env_refuses_a_secret_looking_name(name: str) -> None:
    app = hml.HmlApp("envapp")
    with pytest.raises(DeclarationError, match=r"with_secret_env\(") as info:
        app.with_env(name, "hunter14")
    assert "hunter14" not in str(info.value) and name in str(info.value)
    with pytest.raises(DeclarationError, match="with_secret_env"):
        ContainerConfig().with_env(name, "hunter14")
    assert name not in app.env


def test_with_env_refuses_a_url_with_a_password_under_any_name() -> None:
    with pytest.raises(DeclarationError, match="URL password") as info:
        hml.HmlApp("envapp").with_env("DATABASE_URL", f"postgres://u:{PW}@h/db")
    assert PW not in str(info.value)


def test_with_env_keeps_plain_values_paths_and_explicit_non_secrets() -> None:
    app = hml.HmlApp("envapp")
    app.with_env("LOG_LEVEL", "info").with_env("TOKENIZERS_PARALLELISM", "false")
    app.with_env("DB_PASSWORD_FILE", "/run/secrets/db").with_env(
        "GOOGLE_APPLICATION_CREDENTIALS", "/secret/key.json"
    )
    app.with_env("MAX_TOKEN", 512, not_secret=True)  # only looks secret
    assert app.env["MAX_TOKEN"] == "512" and app.env["DB_PASSWORD_FILE"] == "/run/secrets/db"


@hml.op()
def call_api() -> int:
    return 1


def _noop() -> int:
    return 1


def test_a_secret_env_is_refused_before_it_reaches_the_compiled_yaml(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="API_TOKEN"):
        hml.op(env={"API_TOKEN": "hunter14"})(_noop)
    app = hml.HmlApp("kfpsecret", image_url="registry.example/app:1", root="gs://b/p")

    with pytest.raises(DeclarationError, match=r"with_secret_env\('API_TOKEN'"):

        @hml.pipeline(app.pipelines)
        def leaky():
            call_api().with_env("API_TOKEN", "hunter14")

        compile_pipeline(app, "leaky", tmp_path / "leaky.yaml")
    assert not (tmp_path / "leaky.yaml").exists()

    @hml.pipeline(app.pipelines)
    def fixed():
        call_api().with_secret_env("API_TOKEN", "api-credentials", "token")

    result = compile_pipeline(app, "fixed", tmp_path / "fixed.yaml")
    assert "api-credentials" in result.yaml and "hunter14" not in result.yaml
