"""`inference deploy` serving by alias, from the rendered manifests (--dry-run): --model
MODEL=ALIAS goes into HML_MODELS unpinned, --model-poll-seconds and --admin-token-secret reach
the pod's env (the token only as a secretKeyRef), --canary ALIAS or latest pins the version it
names at deploy time, and `inference promote` is `deploy --promote`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypermodel.cli.errors import run_cli
from hypermodel.errors import DeclarationError, UsageError
from hypermodel.k8s.canary import CANARY_RECORD, PROMOTED, LiveCanary, describe_canary
from hypermodel.k8s.manifests import DeployOptions, build_manifests
from tests.support import free_port, require_module

from .apps import make_app, point_latest, publish, set_alias

kubernetes_validate = require_module("kubernetes_validate")

MODEL = "wine-classifier"
PIN = "HML_MODEL_SHA256_WINE_CLASSIFIER"
TOKEN = "tok-9f8e7d6c5b4a-the-admin-token-itself"


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """v1 and v2 published, latest at v2, production at v1."""
    root = tmp_path / "bucket"
    publish(root, MODEL, "v1")
    publish(root, MODEL, "v2")
    point_latest(root, MODEL, "v2")
    set_alias(root, MODEL, "production", "v1")
    return root


def digest(model: str, version: str) -> str:
    return hashlib.sha256(f"{model}/{version}".encode()).hexdigest()


def deploy(app: Any, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(app.cli(), ["inference", *args], prog_name="shop")
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def dry_run(bucket: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out, err = deploy(
        make_app(), "deploy", "--dry-run", "--host-root", str(bucket), *args, capsys=capsys
    )
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    return docs


def deployment(docs: list[dict[str, Any]], name: str = "shop-inference") -> dict[str, Any]:
    return next(d for d in docs if (d["kind"], d["metadata"]["name"]) == ("Deployment", name))


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest["spec"]["template"]["spec"]["containers"][0])


def env(manifest: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifest)["env"]}


def test_model_by_alias_goes_to_hml_models_unpinned_and_polled(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = dry_run(
        bucket, "--model", f"{MODEL}=production", "--model-poll-seconds", "5", capsys=capsys
    )
    stable = deployment(docs)
    assert env(stable)["HML_MODELS"] == f"{MODEL}=production"
    assert env(stable)["HML_MODEL_POLL_SECONDS"] == "5"
    assert "--model" not in container(stable)["args"]  # run-prod's args would hide HML_MODELS
    assert PIN not in env(stable)  # a pin would refuse the next version the alias names
    # latest too; and 0 (reload only when asked) is a valid poll interval
    stable = deployment(
        dry_run(bucket, "--model", f"{MODEL}=latest", "--model-poll-seconds", "0", capsys=capsys)
    )
    assert (env(stable)["HML_MODELS"], env(stable)["HML_MODEL_POLL_SECONDS"]) == (
        f"{MODEL}=latest",
        "0",
    )


def test_a_version_is_still_pinned_in_the_args_and_joins_hml_models_beside_an_alias(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stable = deployment(dry_run(bucket, "--model", f"{MODEL}=v2", capsys=capsys))
    assert container(stable)["args"][-2:] == ["--model", f"{MODEL}=v2"]
    assert env(stable)[PIN] == digest(MODEL, "v2") and "HML_MODELS" not in env(stable)

    publish(bucket, "price-model", "v7")
    set_alias(bucket, "price-model", "staging", "v7")
    args = ("--model", "price-model=v7", "--model", f"{MODEL}=production")
    for order in (args, args[2:] + args[:2]):  # whichever comes first
        stable = deployment(dry_run(bucket, *order, capsys=capsys))
        assert env(stable)["HML_MODELS"] == f"price-model=v7 {MODEL}=production"
        assert "--model" not in container(stable)["args"]
        assert env(stable)["HML_MODEL_SHA256_PRICE_MODEL"] == digest("price-model", "v7")
        assert PIN not in env(stable)


def test_refs_that_cannot_be_served_are_refused_naming_what_there_is(bucket: Path) -> None:
    with pytest.raises(DeclarationError, match=r"aliases: production -> v1; or 'latest'"):
        build_manifests(
            make_app(), DeployOptions(host_root=str(bucket), models=((MODEL, "prodution"),))
        )
    with pytest.raises(DeclarationError, match=rf"{PIN}.*drop the pin, or serve a version"):
        build_manifests(
            make_app(),
            DeployOptions(
                host_root=str(bucket),
                models=((MODEL, "production"),),
                model_sha256=((MODEL, f"sha256:{digest(MODEL, 'v1')}"),),
            ),
        )
    publish(bucket, "price-model", "v7")  # two models: a bare alias names neither
    with pytest.raises(UsageError, match=r"name the model .*price-model, wine-classifier"):
        build_manifests(
            make_app(), DeployOptions(host_root=str(bucket), models=((None, "production"),))
        )


def test_without_a_readable_bucket_an_alias_is_passed_on_and_a_canary_alias_refused() -> None:
    options = DeployOptions(models=((MODEL, "production"),))  # a local root the pods never see
    stable = build_manifests(make_app(), options)[0]
    assert env(stable)["HML_MODELS"] == f"{MODEL}=production" and PIN not in env(stable)
    with pytest.raises(UsageError, match="name the model"):
        build_manifests(make_app(), DeployOptions(models=((None, "production"),)))
    with pytest.raises(UsageError, match="resolved to a version and its digest at deploy time"):
        build_manifests(make_app(), DeployOptions(canary=(MODEL, "production"), replicas=2))


def test_admin_token_comes_from_a_secret_and_never_from_here(
    bucket: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HML_ADMIN_TOKEN", TOKEN)  # the deployer's own token stays here
    code, out, err = deploy(
        make_app(),
        "deploy",
        "--dry-run",
        "--host-root",
        str(bucket),
        "--model",
        f"{MODEL}=production",
        "--admin-token-secret",
        "shop-admin",
        "--canary",
        f"{MODEL}=latest",
        capsys=capsys,
    )
    assert code == 0, err
    assert TOKEN not in out + err
    docs = list(yaml.safe_load_all(out))
    for name in ("shop-inference", "shop-inference-canary"):  # the canary can be reloaded too
        entries = [
            e for e in container(deployment(docs, name))["env"] if e["name"] == "HML_ADMIN_TOKEN"
        ]
        assert entries == [
            {
                "name": "HML_ADMIN_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "shop-admin", "key": "token"}},
            }
        ]
    # a key of one's own; given again (say by a configurator too) it replaces, never doubles
    app = make_app(configure=lambda d: d.with_secret_env("HML_ADMIN_TOKEN", "old", "old"))
    options = DeployOptions(admin_token_secret=("ops.tokens", "wines-reload"))
    stable = build_manifests(app, options)[0]
    refs = [e["valueFrom"] for e in container(stable)["env"] if e["name"] == "HML_ADMIN_TOKEN"]
    assert refs == [{"secretKeyRef": {"name": "ops.tokens", "key": "wines-reload"}}]


@pytest.mark.parametrize(
    "given",
    [
        TOKEN.upper(),
        f"shop-admin:{TOKEN}!",
        "Bearer x",
        "",
        "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928",  # `openssl rand -hex 24`
        "shop-admin:Zm9vYmFyYmF6cXV1eDEyMzQ1Njc4OTA",  # a base64 token as the key
        "3f1c2a9e-8b7d-4c6e-9a1b-2d3e4f5a6b7c",  # `uuidgen`
        "9f8e7d6c5b4a3928.1706ab12cd34b1a0",  # hex split by a dot
        "ghp-0123456789abcdefghijuv",  # a prefixed personal token
    ],
)
def test_a_token_given_for_the_secret_name_is_refused_without_repeating_it(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = deploy(
        make_app(), "deploy", "--dry-run", "--admin-token-secret", given, capsys=capsys
    )
    assert code == 2, err
    assert "--admin-token-secret" in err and "Traceback" not in err
    assert out == ""
    secret_part = given.partition(":")[2] or given
    if secret_part:
        assert secret_part not in err


@pytest.mark.parametrize(
    "name", ["wine-classifier-admin-token-v2", "hml-admin-2026-12-06", "ops.tokens"]
)
def test_ordinary_secret_names_pass(name: str) -> None:
    from hypermodel.k8s.manifests import parse_secret_key

    assert parse_secret_key(name) == (name, "token")


def test_canary_by_alias_or_latest_pins_what_it_names_at_deploy_time(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for ref, version in (("production", "v1"), ("latest", "v2")):
        docs = dry_run(bucket, "--replicas", "3", "--canary", f"{MODEL}={ref}", capsys=capsys)
        canary = deployment(docs, "shop-inference-canary")
        assert container(canary)["args"][-2:] == ["--model", f"{MODEL}={version}"]
        assert env(canary)[PIN] == digest(MODEL, version)
        record = json.loads(canary["metadata"]["annotations"][CANARY_RECORD])
        assert (record["version"], record["ref"]) == (version, ref)
        assert f"serves {MODEL}={version} ('{ref}' at deploy time)" in (describe_canary(docs) or "")
    set_alias(bucket, MODEL, "production", "v2")  # the alias moved: a new deploy pins v2
    canary = deployment(
        dry_run(bucket, "--replicas", "3", "--canary", f"{MODEL}=production", capsys=capsys),
        "shop-inference-canary",
    )
    assert env(canary)[PIN] == digest(MODEL, "v2")


def test_a_canary_beside_a_stable_that_follows_an_alias(
    bucket: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = dry_run(
        bucket,
        "--replicas",
        "4",
        "--model",
        f"{MODEL}=production",
        "--canary",
        f"{MODEL}=v2",
        capsys=capsys,
    )
    stable, canary = deployment(docs), deployment(docs, "shop-inference-canary")
    assert env(stable)["HML_MODELS"] == f"{MODEL}=production" and PIN not in env(stable)
    # the canary's selection replaces the alias in HML_MODELS (args would be hidden by it)
    assert env(canary)["HML_MODELS"] == f"{MODEL}=v2" and env(canary)[PIN] == digest(MODEL, "v2")
    assert "--model" not in container(canary)["args"]
    live = LiveCanary(
        "default", stable, canary, json.loads(canary["metadata"]["annotations"][CANARY_RECORD])
    )
    # promoted: the alias moves (by the CLI) and the stable pods, restarted, keep following it
    assert live.followed_alias == "production" and live.pods_root() == str(bucket)
    following = live.following()
    assert container(following) == container(stable) and following["spec"]["replicas"] == 4
    annotations = following["spec"]["template"]["metadata"]["annotations"]
    assert annotations[PROMOTED] == f"{MODEL}=v2"
    assert PROMOTED not in (stable["spec"]["template"]["metadata"].get("annotations") or {})
    # where the alias cannot be moved, the stable takes the canary's pods: it pins v2
    assert container(live.promoted()) == container(canary)
    assert container(live.restored()) == container(stable)  # aborted: it follows production


@pytest.mark.parametrize(
    ("ref", "root", "alias", "opened"),
    [
        ("production", "BUCKET", "production", True),
        ("production", "/no/such/node/dir", "production", False),
        ("production", "gs://pods-bucket/hml", "production", True),
        ("latest", "BUCKET", None, True),  # latest cannot be moved: the stable pins
        ("v1", "BUCKET", None, True),  # a version: pinned
        ("", "BUCKET", None, True),  # HML_MODELS not NAME=REF: nothing to move
    ],
)
def test_which_alias_a_promotion_moves_and_where(
    bucket: Path, ref: str, root: str, alias: str | None, opened: bool
) -> None:
    where = str(bucket) if root == "BUCKET" else root
    stable = {
        "spec": {
            "template": {
                "metadata": {"labels": {}},
                "spec": {
                    "containers": [
                        {
                            "env": [
                                {"name": "HML_ROOT", "value": where},
                                {"name": "HML_MODELS", "value": f"other=production {MODEL}={ref}"},
                                {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s"}}},
                            ]
                        }
                    ]
                },
            }
        }
    }
    live = LiveCanary("default", stable, {}, {"model": MODEL, "version": "v2"})
    assert live.followed_alias == alias
    assert live.pods_root() == (where if opened else None)


def test_inference_promote_is_deploy_promote(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    require_module("kubernetes")
    from tests.unit.k8s.test_deploy_cli import write_kubeconfig

    kubeconfig = str(write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{free_port()}"))
    outcomes = [
        deploy(make_app(), *command, "--kubeconfig", kubeconfig, capsys=capsys)
        for command in (("promote",), ("deploy", "--promote"))
    ]
    (code, _, err), (code_, _, err_) = outcomes
    assert code == code_ == 1
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:" in err
    assert err.splitlines()[-1] == err_.splitlines()[-1]
    code, out, _ = deploy(make_app(), "--help", capsys=capsys)
    assert code == 0 and "promote" in out
    code, _, err = deploy(make_app(), "promote", "--canary", "v2", capsys=capsys)
    assert code == 2 and "--canary" in err  # it takes no deploy settings
