"""compile, deploy and inference deploy run the app's image by the digest of its last pushed
build, not by a mutable tag; anything else is left as given."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from hypermodel import hml
from hypermodel.images import local_record, pinned_image
from hypermodel.k8s.manifests import DeployOptions, build_manifests
from hypermodel.provenance import code_state
from tests.support import require_module

DIGEST = "registry.example/pinned@sha256:" + "ab" * 32


@hml.op()
def only(x: int = 1) -> int:
    return x


def make_app(root: Path) -> hml.HmlApp:
    app = hml.HmlApp(name="pinned", image_url="registry.example/pinned:latest", root=str(root))

    @hml.pipeline(app.pipelines)
    def one() -> None:
        only(x=2)

    return app


def record(app: hml.HmlApp, **fields: object) -> None:
    path = local_record(app.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    commit = code_state(full=False).get("commit") or ""
    path.write_text(json.dumps({"repo_digest": DIGEST, "commit": commit, "built": "t", **fields}))


def test_the_records_live_where_the_tests_put_them(tmp_path: Path) -> None:
    assert str(local_record("x")).startswith(os.environ["HML_IMAGE_RECORDS"])


def test_no_record_or_another_repository_leaves_the_image_as_it_is(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert pinned_image(app, app.image_url) == (app.image_url, None)
    record(app, repo_digest="registry.example/other@sha256:" + "cd" * 32)
    assert pinned_image(app, app.image_url) == (app.image_url, None)
    local_record(app.name).write_text("{not json")
    assert pinned_image(app, app.image_url) == (app.image_url, None)


def test_compile_uses_the_pushed_digest_and_says_so(tmp_path: Path) -> None:
    require_module("kfp")
    from hypermodel.kubeflow import compile_pipeline

    app = make_app(tmp_path)
    record(app)
    result = compile_pipeline(app, "one")
    images = {
        c["container"]["image"]
        for c in next(yaml.safe_load_all(result.yaml))["deploymentSpec"]["executors"].values()
    }
    assert images == {DIGEST}
    assert any("pinned to " + DIGEST in w for w in result.warnings)
    assert not any("rebuild" in w for w in result.warnings)


def test_code_moved_on_since_the_build_is_a_warning(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    record(app, commit="0123456789abcdef" * 2 + "01234567")
    image, note = pinned_image(app, app.image_url)
    assert image == DIGEST and note is not None and "image build --push" in note


def test_an_explicit_image_is_never_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(tmp_path)
    record(app)
    assert pinned_image(app, "registry.example/pinned:v2") == ("registry.example/pinned:v2", None)
    (deployment, *_) = build_manifests(app, DeployOptions(image="registry.example/pinned:v2"))
    spec = deployment["spec"]["template"]["spec"]["containers"][0]
    assert spec["image"] == "registry.example/pinned:v2"
    (deployment, *_) = build_manifests(app, DeployOptions())
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == DIGEST
