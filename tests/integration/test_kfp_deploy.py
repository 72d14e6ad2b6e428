"""deploy-dev / deploy-prod through the real kfp.Client against a local HTTP server that answers
the Kubeflow Pipelines v2beta1 API (pytest-httpserver); every request is recorded and checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from hypermodel.kubeflow.deploy import KubeflowError, Target, deploy
from tests.integration.fake_kfp import API, TOKEN, FakeKfp, kfp
from tests.support import REPO, free_port
from tests.unit.kubeflow.apps import make_app

__all__ = ["kfp"]  # the fixture the tests below use, imported


def target(httpserver: HTTPServer) -> Target:
    return Target(host=httpserver.url_for("").rstrip("/"), token=TOKEN)


def test_deploy_dev_uploads_the_pipeline_and_starts_one_run(
    kfp: FakeKfp, httpserver: HTTPServer
) -> None:
    app = make_app()
    result = deploy(
        app, app.pipelines["scoring"], target(httpserver), prod=False, params={"count": 5}
    )
    assert kfp.calls() == [
        f"GET {API}/healthz",
        f"GET {API}/pipelines",
        f"POST {API}/pipelines/upload",
        f"GET {API}/pipelines/pipeline-1/versions",
        f"GET {API}/experiments",
        f"POST {API}/experiments",
        f"POST {API}/runs",
    ]
    assert all(s.auth == f"Bearer {TOKEN}" for s in kfp.sent)
    upload = kfp.sent[2]
    assert upload.query["name"] == "kfpapp-scoring"
    assert "comp-score" in kfp.uploads[0] and "# Name: scoring" in kfp.uploads[0]
    assert kfp.sent[5].body["display_name"] == "kfp-tests-dev"
    run = kfp.sent[6].body
    assert run["experiment_id"] == "experiment-3"
    assert run["pipeline_version_reference"] == {
        "pipeline_id": "pipeline-1",
        "pipeline_version_id": "version-2",
    }
    assert run["runtime_config"]["parameters"] == {"count": 5}
    assert run["display_name"].startswith("scoring-dev-")
    assert (result.run_id, result.version_id) == ("run-4", "version-2")
    assert result.link == f"{target(httpserver).host}/#/runs/details/run-4"


def test_deploy_dev_again_adds_a_version_and_keeps_the_pipeline(
    kfp: FakeKfp, httpserver: HTTPServer
) -> None:
    app = make_app()
    deploy(app, app.pipelines["scoring"], target(httpserver), prod=False)
    kfp.sent.clear()
    result = deploy(app, app.pipelines["scoring"], target(httpserver), prod=False)
    assert kfp.calls() == [
        f"GET {API}/healthz",
        f"GET {API}/pipelines",
        f"POST {API}/pipelines/upload_version",
        f"GET {API}/experiments",
        f"POST {API}/runs",
    ]
    version = kfp.sent[2].query
    assert version["pipelineid"] == "pipeline-1" and version["name"].startswith("scoring-")
    assert not any(s.method == "DELETE" for s in kfp.sent)
    assert len(kfp.pipelines) == 1 and len(kfp.versions["pipeline-1"]) == 2
    assert (
        kfp.sent[-1].body["pipeline_version_reference"]["pipeline_version_id"] == result.version_id
    )


def test_deploy_prod_creates_one_schedule_and_replaces_it_on_redeploy(
    kfp: FakeKfp, httpserver: HTTPServer
) -> None:
    app = make_app()
    pipeline = app.pipelines["scoring"]
    first = deploy(app, pipeline, target(httpserver), prod=True)
    create = next(s for s in kfp.sent if s.method == "POST" and s.path == f"{API}/recurringruns")
    body = create.body
    assert body["trigger"] == {"cron_schedule": {"cron": "0 30 2 * * *"}}  # 5 fields converted
    assert int(body["max_concurrency"]) == 1
    assert body["mode"] == "ENABLE" and body["no_catchup"] is True
    assert body["display_name"] == "scoring-prod"
    assert body["experiment_id"] == first.experiment_id
    assert body["pipeline_version_reference"] == {
        "pipeline_id": first.pipeline_id,
        "pipeline_version_id": first.version_id,
    }
    assert any("five fields" in n for n in first.notes)
    assert list(kfp.recurring) == [first.recurring_run_id]

    kfp.sent.clear()
    second = deploy(app, pipeline, target(httpserver), prod=True)
    assert kfp.calls() == [
        f"GET {API}/healthz",
        f"GET {API}/pipelines",
        f"POST {API}/pipelines/upload_version",
        f"GET {API}/experiments",
        f"GET {API}/recurringruns",
        f"POST {API}/recurringruns",
        f"DELETE {API}/recurringruns/{first.recurring_run_id}",
    ]
    listed = kfp.sent[4].query
    assert listed["experiment_id"] == first.experiment_id
    assert json.loads(listed["filter"])["predicates"][0]["stringValue"] == "scoring-prod"
    assert second.replaced == [first.recurring_run_id]
    assert list(kfp.recurring) == [second.recurring_run_id]  # exactly one schedule left
    assert (
        kfp.recurring[second.recurring_run_id]["pipeline_version_reference"]["pipeline_version_id"]
        == second.version_id
    )
    assert second.version_id != first.version_id and len(kfp.pipelines) == 1


def test_deploy_prod_cron_override_and_refusal(kfp: FakeKfp, httpserver: HTTPServer) -> None:
    from hypermodel.errors import UsageError

    app = make_app()
    deploy(
        app,
        app.pipelines["scoring"],
        target(httpserver),
        prod=True,
        cron="0 0 */6 * * *",
        service_account_name="pipeline-runner",
    )
    assert next(iter(kfp.recurring.values()))["service_account"] == "pipeline-runner"
    assert (
        kfp.recurring[next(iter(kfp.recurring))]["trigger"]["cron_schedule"]["cron"]
        == "0 0 */6 * * *"
    )
    kfp.sent.clear()
    with pytest.raises(UsageError, match="not a valid Kubeflow schedule"):
        deploy(app, app.pipelines["scoring"], target(httpserver), prod=True, cron="every day")
    assert kfp.sent == []  # refused before any request


def test_http_500_is_one_clear_line(kfp: FakeKfp, httpserver: HTTPServer) -> None:
    kfp.fail_on = r"POST .*/experiments$"
    app = make_app()
    with pytest.raises(KubeflowError) as info:
        deploy(app, app.pipelines["scoring"], target(httpserver), prod=False)
    message = str(info.value)
    assert "\n" not in message
    assert (
        "answered 500" in message
        and "'ensure experiment'" in message
        and "database is down" in message
    )
    assert TOKEN not in message


def test_unreachable_host_is_one_clear_line() -> None:
    app = make_app()
    with pytest.raises(KubeflowError) as info:
        deploy(
            app,
            app.pipelines["scoring"],
            Target(host=f"http://127.0.0.1:{free_port()}", token=TOKEN),
            prod=False,
        )
    message = str(info.value)
    assert (
        "\n" not in message
        and "cannot reach Kubeflow at http://127.0.0.1:" in message
        and "--host" in message
    )
    assert TOKEN not in message


def _cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys\nfrom tests.unit.kubeflow.apps import app\napp.start(sys.argv[1:])\n"
    # outside the checkout (the app is imported through PYTHONPATH), so the state of the
    # developer's git tree does not decide whether deploying is refused
    full = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_deploy_prod_prints_ids_and_link_never_the_token(
    kfp: FakeKfp, httpserver: HTTPServer, tmp_path: Path
) -> None:
    host = target(httpserver).host
    env = {"HML_KFP_HOST": host, "HML_KFP_TOKEN": TOKEN, "HML_ROOT": "gs://hml-test-bucket/kfp"}
    proc = _cli(["pipelines", "scoring", "deploy-prod"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        "recurring run recurring-" in proc.stdout
        and f"{host}/#/recurringrun/details/" in proc.stdout
    )
    assert TOKEN not in proc.stdout + proc.stderr
    assert all(s.auth == f"Bearer {TOKEN}" for s in kfp.sent)


def test_cli_errors_exit_non_zero_with_one_line(
    kfp: FakeKfp, httpserver: HTTPServer, tmp_path: Path
) -> None:
    kfp.fail_on = r"POST .*/runs$"
    env = {"HML_KFP_TOKEN": TOKEN, "HML_ROOT": "gs://hml-test-bucket/kfp"}
    proc = _cli(
        ["pipelines", "scoring", "deploy-dev", "--host", target(httpserver).host], env, tmp_path
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "answered 500" in errors[0] and "'start run'" in errors[0]
    assert "Traceback" not in proc.stderr and TOKEN not in proc.stderr
    down = _cli(
        ["pipelines", "scoring", "deploy-dev", "--host", f"http://127.0.0.1:{free_port()}"],
        {**env, "HML_ROOT": str(tmp_path / "local-root")},
        tmp_path,
    )
    assert (
        down.returncode == 1
        and "error: cannot reach Kubeflow" in down.stderr
        and "Traceback" not in down.stderr
    )
    assert "warning: the app's root" in down.stderr  # notes are shown before the failure


def test_a_failing_health_check_fails_at_once(kfp: FakeKfp, httpserver: HTTPServer) -> None:
    kfp.fail_on = r"GET .*/healthz$"
    app = make_app()
    with pytest.raises(KubeflowError, match=r"answered 500 .*'connect': database is down"):
        deploy(app, app.pipelines["scoring"], target(httpserver), prod=False)
    assert kfp.calls() == [f"GET {API}/healthz"]  # one attempt, no retries with sleeps


def test_a_host_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from hypermodel.kubeflow import deploy as deploy_module

    monkeypatch.setattr(deploy_module, "CONNECT_TIMEOUT", 0.5)
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(
            KubeflowError,
            match=r"cannot reach Kubeflow at http://127\.0\.0\.1:\d+ \(ReadTimeoutError\)",
        ):
            deploy_module._Kfp(Target(host=host, token=TOKEN, namespace="team-a"))
        assert time.monotonic() - start < 10


CLIENT_ID = "1234-iap.apps.googleusercontent.com"
IAP_TOKEN = "iap-id-token-never-printed-456"
IAP_FIX = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file (or run where a service "
    "account is attached), or pass --token / $HML_KFP_TOKEN instead"
)


@pytest.fixture
def no_kfp_oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """kfp.Client also reads a client id (and a user-flow OAuth app) from these."""
    for name in (
        "KF_PIPELINES_IAP_OAUTH2_CLIENT_ID",
        "KF_PIPELINES_APP_OAUTH2_CLIENT_ID",
        "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def outside_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploying refuses a dirty git tree: run it outside the developer's own checkout."""
    monkeypatch.chdir(tmp_path)


def _deploy_cli(argv: list[str]) -> tuple[int, str, str]:
    """The app's console script in this process (so monkeypatches apply): code, out, err."""
    import contextlib
    import io

    from hypermodel.cli.errors import run_cli

    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        pytest.raises(SystemExit) as exited,
    ):
        run_cli(make_app().cli(), argv, prog_name="kfpapp")
    return int(exited.value.code or 0), out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", ["deploy-dev", "deploy-prod"])
def test_client_id_without_google_credentials_is_one_line_and_sends_nothing(
    kfp: FakeKfp, httpserver: HTTPServer, tmp_path: Path, command: str
) -> None:
    # a clean environment: no GOOGLE_APPLICATION_CREDENTIALS, an empty HOME (no gcloud ADC, no
    # ~/.config/kfp/credentials.json), and no probing for a GCE metadata server
    env = {"HML_ROOT": "gs://hml-test-bucket/kfp", "NO_GCE_CHECK": "true"}
    host = target(httpserver).host
    proc = _cli(
        ["pipelines", "scoring", command, "--host", host, "--client-id", CLIENT_ID], env, tmp_path
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and all(
        line.startswith("warning:") for line in lines if line not in errors
    ), proc.stderr  # deploy-prod warns about the 5-field cron first
    assert errors[0] == (
        f"error: cannot get a Google IAP token for client id '{CLIENT_ID}' (--client-id / "
        "$HML_KFP_CLIENT_ID): DefaultCredentialsError: Your default credentials were not found. "
        "To set up Application Default Credentials, see "
        "https://cloud.google.com/docs/authentication/external/set-up-adc for more information; "
        + IAP_FIX
    )
    assert kfp.sent == []  # failed before any request reached Kubeflow


def test_client_id_with_user_credentials_fails_instead_of_sending_no_auth(
    kfp: FakeKfp,
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_kfp_oauth_env: None,
) -> None:
    # `gcloud auth application-default login` credentials: kfp gets no IAP token from them and
    # would go on without an Authorization header
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "gcloud-client",
                "client_secret": "gcloud-secret",
                "refresh_token": "user-refresh-token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    code, out, err = _deploy_cli(
        [
            "pipelines",
            "scoring",
            "deploy-dev",
            "--host",
            target(httpserver).host,
            "--client-id",
            CLIENT_ID,
        ]
    )
    assert code == 1, (out, err)
    assert err == (
        f"error: cannot get a Google IAP token for client id '{CLIENT_ID}' (--client-id / "
        "$HML_KFP_CLIENT_ID): the Google credentials found are not a service account's (user "
        "credentials from `gcloud auth application-default login` cannot mint one); "
        + IAP_FIX
        + "\n"
    )
    assert "user-refresh-token" not in out + err and "gcloud-secret" not in out + err
    assert kfp.sent == []


def _claims(jwt: str, public_pem: bytes) -> dict[str, Any]:
    """The claims of a grant google-auth signed with the service account's key (checked; its
    audience is always Google's token endpoint, wherever it is sent)."""
    from google.auth import jwt as google_jwt

    return dict(
        google_jwt.decode(jwt, certs=public_pem, audience="https://oauth2.googleapis.com/token")
    )


@pytest.mark.parametrize("command", ["deploy-dev", "deploy-prod"])
def test_client_id_sends_the_iap_id_token_as_bearer(
    kfp: FakeKfp,
    httpserver: HTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_kfp_oauth_env: None,
    command: str,
) -> None:
    """The whole google-auth flow runs for real, offline: a service account key file (whose
    token endpoint is the fake server) signs the grants; only the URI kfp sends its IAP grant
    to (Google's token endpoint) is pointed at the fake server."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from kfp.client import auth as kfp_auth

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token_uri = httpserver.url_for("/oauth2/token")
    email = "deployer@proj.iam.gserviceaccount.com"
    keyfile = tmp_path / "sa.json"
    keyfile.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "proj",
                "private_key_id": "key-1",
                "private_key": private_pem,
                "client_email": email,
                "client_id": "42",
                "token_uri": token_uri,
            }
        )
    )
    grants: list[dict[str, Any]] = []

    def token_endpoint(request: Request) -> Response:
        claims = _claims(request.form["assertion"], public_pem)
        grants.append(claims)
        if "target_audience" in claims:  # the grant for an ID token (what IAP checks)
            payload: dict[str, Any] = {"id_token": IAP_TOKEN}
        else:  # the bootstrap grant for an access token
            payload = {"access_token": "bootstrap-access", "expires_in": 3600}
        return Response(json.dumps(payload), 200, content_type="application/json")

    httpserver.expect_request("/oauth2/token", method="POST").respond_with_handler(token_endpoint)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(keyfile))
    monkeypatch.setattr(kfp_auth, "OAUTH_TOKEN_URI", token_uri)

    code, out, err = _deploy_cli(
        [
            "pipelines",
            "scoring",
            command,
            "--host",
            target(httpserver).host,
            "--client-id",
            CLIENT_ID,
        ]
    )
    assert code == 0, (out, err)
    assert [g["iss"] for g in grants] == [email, email]
    assert "target_audience" not in grants[0]
    assert grants[1]["target_audience"] == CLIENT_ID
    assert len(kfp.sent) >= 5 and kfp.calls()[0] == f"GET {API}/healthz"
    assert all(s.auth == f"Bearer {IAP_TOKEN}" for s in kfp.sent), [s.auth for s in kfp.sent]
    assert IAP_TOKEN not in out + err and "bootstrap-access" not in out + err


def test_cli_token_option_is_sent_as_bearer_and_wins_over_client_id(
    kfp: FakeKfp, httpserver: HTTPServer, tmp_path: Path
) -> None:
    env = {"HML_ROOT": "gs://hml-test-bucket/kfp", "NO_GCE_CHECK": "true"}
    base = ["pipelines", "scoring", "deploy-dev", "--host", target(httpserver).host]
    proc = _cli([*base, "--token", TOKEN], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith(f"{target(httpserver).host}/#/runs/details/")
    assert len(kfp.sent) == 7 and all(s.auth == f"Bearer {TOKEN}" for s in kfp.sent)
    assert TOKEN not in proc.stdout + proc.stderr
    kfp.sent.clear()
    # with both, the token is used and Google is never asked (no credentials here)
    both = _cli([*base, "--token", TOKEN, "--client-id", CLIENT_ID], env, tmp_path)
    assert both.returncode == 0, both.stderr
    assert kfp.sent and all(s.auth == f"Bearer {TOKEN}" for s in kfp.sent)
    assert TOKEN not in both.stdout + both.stderr


def test_oauth_app_login_shows_its_prompt_and_a_closed_stdin_is_one_line(
    kfp: FakeKfp, httpserver: HTTPServer, tmp_path: Path
) -> None:
    # kfp's user sign-in: with an OAuth app configured it prints a Google URL and reads the
    # page the browser landed on from stdin (over SSH). The URL must be visible, and a closed
    # stdin must end in one line with the fix, not a hang or an EOFError traceback.
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "HML_ROOT": "gs://hml-test-bucket/kfp",
        "NO_GCE_CHECK": "true",
        "SSH_CONNECTION": "10.0.0.1 22 10.0.0.2 22",
        "KF_PIPELINES_APP_OAUTH2_CLIENT_ID": "desktop-app-client",
        "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET": "desktop-app-secret-789",
    }
    code = "import sys\nfrom tests.unit.kubeflow.apps import app\napp.start(sys.argv[1:])\n"
    argv = ["pipelines", "scoring", "deploy-dev", "--host", target(httpserver).host]
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv, "--client-id", CLIENT_ID],
        cwd=tmp_path,  # outside the checkout: its git state must not matter
        env={**env, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert "https://accounts.google.com/o/oauth2/v2/auth?client_id=desktop-app-client" in (
        proc.stderr
    )
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: signing in to the IAP client id '{CLIENT_ID}' with the OAuth app in "
        "$KF_PIPELINES_APP_OAUTH2_CLIENT_ID asks for the URL the browser lands on, and stdin "
        "is closed: run the command once in a terminal (the login is saved for next time), or "
        "unset KF_PIPELINES_APP_OAUTH2_CLIENT_ID and use a service account key "
        "(GOOGLE_APPLICATION_CREDENTIALS) or --token / $HML_KFP_TOKEN"
    )
    assert "desktop-app-secret-789" not in proc.stdout + proc.stderr
    assert kfp.sent == []
