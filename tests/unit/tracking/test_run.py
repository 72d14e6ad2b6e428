"""The Run API: create/attach, read-only, artifacts, shared artifacts, versions, logs, states."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest

from hypermodel.errors import AlreadyExistsError, HypermodelError, NotFoundError
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking import identity
from hypermodel.tracking.config import Config
from hypermodel.tracking.run import ReadOnlyRunError, Run, current_run, maybe_current_run
from hypermodel.tracking.store import RunStore


def test_create_then_attach_as_the_same_author(storage: LocalStorage) -> None:
    first = Run("exp-1", storage=storage, project="wines")
    first.add_metrics("loss", 1.0, 0)
    first.close()
    again = Run("exp-1", storage=storage)
    assert again.mode == "write"
    again.add_metrics("loss", 0.5, 1)
    again.close()
    record = RunStore(storage).load("exp-1")
    assert [p[1] for p in record.metrics["loss"]] == [1.0, 0.5]
    assert record.meta["project"] == "wines" and record.meta["author"] == "alice@example.org"


def test_another_authors_run_is_read_only(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    Run("alices", storage=storage).close()
    monkeypatch.setenv("HML_AUTHOR", "bob@example.org")
    bobs_view = Run("alices", storage=storage)
    assert bobs_view.read_only
    for write in (
        lambda: bobs_view.add_metrics("x", 1.0),
        lambda: bobs_view.add_tag("t"),
        lambda: bobs_view.add_config(Config(a=1)),
        lambda: bobs_view.completed(),
        lambda: bobs_view.add_artifact(__file__),
    ):
        with pytest.raises(
            ReadOnlyRunError, match=r"created by alice@example.org.*read-only.*bob@example.org"
        ):
            write()
    assert not list(storage.list("tracking/runs/alices/events"))


def test_bad_run_name_is_refused(storage: LocalStorage) -> None:
    with pytest.raises(HypermodelError, match=r"run name '../x' is not allowed"):
        Run("../x", storage=storage)


def test_config_states_notes_meta_tags(storage: LocalStorage) -> None:
    run = Run("misc", storage=storage)
    run.add_config(Config(lr=0.1, model=Config(depth=3)))
    run.add_config({"model": {"width": 8}})
    run.training()
    run.set_note("a note")
    run.add_meta("hello", "world")
    run.add_tag("Train", color="#ff0000")
    run.add_tag("Train")
    run.failed("diverged")
    run.close()
    r = RunStore(storage).load("misc")
    assert r.config == {"lr": 0.1, "model": {"depth": 3, "width": 8}}
    assert r.state == "failed" and r.error == "diverged"
    assert [s["state"] for s in r.states] == ["training", "failed"]
    assert r.notes == ["a note"] and r.metas == {"hello": "world"}
    assert r.tags == [{"name": "Train", "description": None, "color": "#ff0000"}]
    with pytest.raises(HypermodelError, match="unknown run state 'sleeping'"):
        run.set_state("sleeping")


def test_artifacts_files_steps_and_directories(storage: LocalStorage, tmp_path: Path) -> None:
    plot = tmp_path / "test.png"
    plot.write_bytes(b"\x89PNG first")
    model_dir = tmp_path / "model"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "weights.bin").write_bytes(b"w" * 100)
    (model_dir / "sub" / "vocab.txt").write_text("a\nb\n")
    run = Run("arts", storage=storage)
    run.add_artifact(plot)
    plot.write_bytes(b"\x89PNG step 1")  # the content at call time is what is stored
    run.add_artifact(plot, step=1)
    run.add_artifact(model_dir)
    run.add_artifact(tmp_path / "missing.txt")  # logged, not raised
    run.close()
    store = RunStore(storage)
    r = store.load("arts")
    assert sorted(r.artifacts) == ["model.zip", "test.png", "test.png@1"]
    assert store.artifact_bytes(r, "test.png") == b"\x89PNG first"
    assert store.artifact_bytes(r, "test.png@1") == b"\x89PNG step 1"
    zipped = tmp_path / "out.zip"
    zipped.write_bytes(store.artifact_bytes(r, "model.zip"))
    assert sorted(zipfile.ZipFile(zipped).namelist()) == ["sub/vocab.txt", "weights.bin"]


def test_shared_artifacts_push_and_pull(storage: LocalStorage, tmp_path: Path) -> None:
    src = tmp_path / "labels.json"
    src.write_text('["a", "b"]')
    run = Run("sharer", storage=storage, project="wines")
    assert run.add_shared_artifact(src) == "labels.json"
    out = run.pull_shared_artifact("labels.json", tmp_path / "pulled.json")
    assert out.read_text() == '["a", "b"]'
    with pytest.raises(NotFoundError, match=r"no shared artifact 'nope'.*labels.json"):
        run.pull_shared_artifact("nope")
    run.close()


class FakeDataset:
    """Duck-typed like hypermodel.data's Dataset: a name and a checksum."""

    name = "train"
    project = "wines"
    checksum = "0123456789abcdef0123456789abcdef01234567"


def test_models_and_datasets_by_name_and_version(storage: LocalStorage, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(b"model-bytes")
    run = Run("publisher", storage=storage, project="wines")
    record = run.add_mlmodel(model_dir, "clf", "1.0.0", short_description="a classifier")
    assert record is not None and record["files"][0]["path"] == "model.pkl"
    assert run.add_mlmodel(model_dir, "clf", "1.0.1") is not None  # same bytes: one blob
    assert len(list(storage.list("tracking/blobs"))) == 1
    (model_dir / "model.pkl").write_bytes(b"changed")
    with pytest.raises(AlreadyExistsError, match=r"version '1.0.0' already exists.*immutable"):
        run.add_mlmodel(model_dir, "clf", "1.0.0")
    ds = run.add_dataset(FakeDataset(), "train", "v1")
    assert ds is not None and ds["reference"]["checksum"] == FakeDataset.checksum
    assert not list(
        storage.list("tracking/blobs/" + FakeDataset.checksum[:2])
    )  # a reference, not a copy
    run.close()

    reader = Run("consumer", storage=storage, project="wines")
    path = reader.download_mlmodel("clf", "1.0.0", tmp_path / "dl")
    assert isinstance(path, Path) and (path / "model.pkl").read_bytes() == b"model-bytes"
    assert reader.download_dataset("train", "v1", tmp_path)["checksum"] == FakeDataset.checksum  # type: ignore[index]
    with pytest.raises(NotFoundError, match=r"no version '9'.*versions: 1.0.0, 1.0.1"):
        reader.download_mlmodel("clf", "9")
    reader.close()
    store = RunStore(storage)
    assert [o["name"] for o in store.load("publisher").outputs] == ["clf", "clf", "train"]
    assert [i["name"] for i in store.load("consumer").inputs] == ["clf", "train"]


def test_corrupt_blob_is_detected(storage: LocalStorage, tmp_path: Path) -> None:
    f = tmp_path / "m.bin"
    f.write_bytes(b"abc")
    run = Run("corrupt", storage=storage)
    record = run.add_mlmodel(f, "m", "1")
    assert record is not None
    digest = record["files"][0]["sha256"]
    storage.write_bytes(f"tracking/blobs/{digest[:2]}/{digest}", b"tampered")
    with pytest.raises(HypermodelError, match="corrupt"):
        run.download_mlmodel("m", "1", tmp_path / "dl")
    run.close()


def test_recording_logs(storage: LocalStorage) -> None:
    run = Run("logs", storage=storage)
    logger = run.start_recording_logs("train-test")
    logger.info("epoch 1")
    logger.info("Progress \r")
    logger.info("-\r")
    run.stop_recording_logs("train-test")
    logger.critical("not recorded")
    assert logging.getLogger("train-test").level == logging.NOTSET  # restored
    run.close()
    text = RunStore(storage).logs("logs")
    assert "epoch 1\n" in text and "not recorded" not in text
    assert "Progress " in text and text.count("\n") == 1  # '\r' continues the line


def test_package_versions_and_git_state(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson

    run = Run("env", storage=storage)
    run.add_package_versions({"orjson": orjson})
    run.close()
    r = RunStore(storage).load("env")
    assert r.packages == {"orjson": orjson.__version__}
    assert r.machine["python"]


def test_credentials_never_enter_git_state() -> None:
    assert (
        identity.strip_credentials("https://user:s3cret@github.com/x/y.git")
        == "https://github.com/x/y.git"
    )
    assert identity.strip_credentials("git@github.com:x/y.git") == "git@github.com:x/y.git"


def test_git_head_read_from_files(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", "-b", "trunk", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-q", "-m", "one"], check=True, env=env)
    sha = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    state = identity.git_state(tmp_path / "f", full=True)
    assert state["commit"] == sha and state["branch"] == "trunk"
    assert state["dirty"] is False and state["message"] == "one"
    subprocess.run(["git", "-C", str(tmp_path), "pack-refs", "--all"], check=True)
    assert identity.head(tmp_path)["commit"] == sha  # packed refs too


def test_current_run_outside_an_op(storage: LocalStorage) -> None:
    assert maybe_current_run() is None
    with pytest.raises(HypermodelError, match=r"outside a running op.*hml.Run\(name=...\)"):
        current_run()
    with Run("scoped", storage=storage) as run:
        assert current_run() is run
    assert maybe_current_run() is None
    with pytest.raises(ZeroDivisionError), Run("scoped-fail", storage=storage):
        1 / 0  # noqa: B018
    store = RunStore(storage)
    assert store.load("scoped").state == "completed"
    failed = store.load("scoped-fail")
    assert failed.state == "failed" and failed.error == "ZeroDivisionError: division by zero"


def test_writes_after_close_are_ignored(
    storage: LocalStorage, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run("closed", storage=storage)
    run.add_metrics("early", 1.0)
    run.close()
    written = sorted(str(p) for p in Path(storage.root).rglob("*") if p.is_file())
    with caplog.at_level(logging.WARNING, logger="hypermodel.tracking"):
        run.add_metrics("late", 1.0)  # never raised
        run.add_tag("late")
        run.set_note("late")
        run.close()  # closing twice is harmless too
    assert sorted(str(p) for p in Path(storage.root).rglob("*") if p.is_file()) == written
    record = RunStore(storage).load("closed")
    assert set(record.metrics) == {"early"} and record.tags == [] and record.notes == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "tracking: run 'closed' is closed; add_metrics and later writes are ignored"
    ]


def test_git_state_of_a_named_external_package(
    storage: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    repo = tmp_path / "extlib"
    (repo / "voxnet_fake").mkdir(parents=True)
    (repo / "voxnet_fake" / "__init__.py").write_text("X = 1\n")
    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(["git", "init", "-q", "-b", "dev", str(repo)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "remote",
            "add",
            "origin",
            "https://bot:t0ken@example.org/x/voxnet.git",
        ],
        check=True,
    )
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "init"], check=True, env=env)
    (repo / "voxnet_fake" / "__init__.py").write_text("X = 2\n")  # uncommitted change
    monkeypatch.syspath_prepend(str(repo))
    run = Run("ext", storage=storage)
    run.add_package_repo_state("voxnet_fake")
    run.close()
    state = RunStore(storage).load("ext").git["voxnet_fake"]
    assert state["branch"] == "dev" and len(state["commit"]) == 40
    assert state["dirty"] is True
    assert state["remote"] == "https://example.org/x/voxnet.git"  # the token never lands in the run
