"""``hml gc`` and ``hml datasets rm``: versions nothing references go, everything a model, the
runner's cache, a latest output, a running run or a kept version's lineage names stays."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hypermodel.cli.errors import run_cli
from hypermodel.cli.hml_cli import build_hml_cli
from hypermodel.data import Dataset
from hypermodel.data.gc import dependency_checksums
from hypermodel.data.versions import entries
from hypermodel.serving.model import ModelContainer
from hypermodel.storage import open_storage

from .models import Item
from .test_versions import Run, write


def hml(root: Path, *args: str) -> Any:
    return CliRunner().invoke(build_hml_cli(), ["--root", str(root), *args])


def fails(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Through the CLI's error boundary: (exit code, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run_cli(build_hml_cli(), ["--root", str(root), *args], "hml")
    captured = capsys.readouterr()
    assert captured.out == ""
    return int(exited.value.code or 0), captured.err


def ok(root: Path, *args: str) -> Any:
    result = hml(root, *args)
    assert result.exit_code == 0, result.output
    return result


def ds(root: Path, name: str, version: str | None = None) -> Dataset:
    return Dataset(Item, str(root), "p", "main", name, version=version)


def write_version(root: Path, name: str, run_id: str, n: int = 3) -> Dataset:
    """A new version of ``name`` written inside run ``run_id``; the pinned version."""
    with Run(root, run_id):
        write(ds(root, name), n)
        return ds(root, name).pinned()


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_dir())


def publish_model(root: Path, *training: Dataset) -> str:
    mc = ModelContainer("clf")
    mc.model = {"weights": [1, 2, 3]}
    for dataset in training:
        mc.add_training_dataset(dataset)
    ref = mc.publish(open_storage(str(root)))
    return ref.version


def task_output(dataset: Dataset) -> dict[str, Any]:
    """What a task op returns (and the runner stores) for its output dataset."""
    return {
        "dataset": dataset.directory,
        "ref": dataset.ref,
        "version": dataset.version,
        "checksum": dataset.checksum,
    }


def put_json(root: Path, key: str, value: Any) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """Versions of x referenced in every way there is, two unreferenced ones, a chain of
    dependencies z -> y0 -> x2, a version a running run uses, and a plain dataset."""
    root = tmp_path / "bucket"
    x = [write_version(root, "x", f"rx{i}", n=i + 1) for i in range(7)]
    # x0: in the runner's cache, by directory only
    put_json(root, "cache/t/abc.json", {"output": {"dataset": x[0].directory}, "run_id": "rx0"})
    # x1: a published model's training dataset (by checksum)
    model = publish_model(root, x[1])
    # x4: the latest output of a task, by NAME@VERSION only
    put_json(root, "pipelines/p/latest/t.json", {"output": {"ref": x[4].ref}, "run_id": "rx4"})
    # x2 <- y0 <- z: y0 reads x2, z reads y0; y1 is y's newest, z is z's only version
    with Run(root, "ry0"):
        list(x[2].open("r"))
        write(ds(root, "y"), 2)
        y0 = ds(root, "y").pinned()
    y1 = write_version(root, "y", "ry1")
    with Run(root, "rz"):
        list(y0.open("r"))
        write(ds(root, "z"), 2)
        z = ds(root, "z").pinned()
    # w0: used by a run that has not finished (its record says running); w1 w's newest
    w0 = write_version(root, "w", "live")
    put_json(root, "runs/live/run.json", {"run_id": "live", "status": "running", "finished": None})
    put_json(root, "runs/rx3/run.json", {"run_id": "rx3", "status": "succeeded", "finished": 1})
    w1 = write_version(root, "w", "rw1")
    plain = Dataset(Item, str(root), "p", "main", "plain")
    write(plain, 4)
    return {
        "root": root,
        "x": x,
        "y": [y0, y1],
        "z": z,
        "w": [w0, w1],
        "plain": plain,
        "model": model,
    }


def test_the_dry_run_lists_each_version_with_its_size_and_removes_nothing(
    world: dict[str, Any],
) -> None:
    root, x = world["root"], world["x"]
    before = files(root)
    out = ok(root, "gc").stdout
    assert files(root) == before
    lines = out.splitlines()
    doomed = [line.split()[2] for line in lines if line.startswith("would remove ")]
    assert doomed == [f"p/main/x@{x[3].version}", f"p/main/x@{x[5].version}"]
    assert "would free " in out and "in 2 version(s)" in out
    assert f"to remove them: hml --root {root} gc --keep 1 --yes" in out
    # sizes: the bytes of each version's files
    size = sum(p.stat().st_size for p in (root / x[3].directory).iterdir())
    report = json.loads(ok(root, "gc", "--format", "json").stdout)
    assert report["removed"] is False
    first = report["remove"][0]
    assert (first["version"], first["bytes"]) == (x[3].version, size)
    assert report["bytes"] == sum(d["bytes"] for d in report["remove"])
    assert files(root) == before


def test_yes_removes_exactly_the_unreferenced_versions(world: dict[str, Any]) -> None:
    root, x = world["root"], world["x"]
    report = json.loads(ok(root, "gc", "--format", "json").stdout)
    reasons = {d["id"]: d["reason"] for d in report["kept"]}
    assert (
        reasons[x[0].ref.replace("x@", "p/main/x@")] == "referenced by the runner's cache (cache/)"
    )
    assert (
        reasons[f"p/main/x@{x[1].version}"] == f"referenced by model clf version {world['model']}"
    )
    # z's .def embeds y0's, which names x2: found at any depth
    assert reasons[f"p/main/x@{x[2].version}"] in {
        f"a dependency of p/main/y@{world['y'][0].version}",
        f"a dependency of p/main/z@{world['z'].version}",
    }
    assert (
        reasons[f"p/main/y@{world['y'][0].version}"]
        == f"a dependency of p/main/z@{world['z'].version}"
    )
    assert reasons[f"p/main/x@{x[4].version}"] == "referenced by the latest output of p/t"
    assert (
        reasons[f"p/main/w@{world['w'][0].version}"] == "used by run live, which has not finished"
    )
    assert reasons[f"p/main/x@{x[6].version}"] == "one of the newest 1 (--keep 1)"

    out = ok(root, "gc", "--yes").stdout
    assert f"removed p/main/x@{x[3].version}" in out and f"removed p/main/x@{x[5].version}" in out
    assert "freed " in out
    for gone in (x[3], x[5]):
        assert not (root / gone.directory).exists()
        assert not (root / gone.directory).parent.exists()  # the empty main@<version> too
        assert not (root / f".hml-versions/p/main/x/{gone.version}.json").exists()
    # the run pointers at removed versions go; the others stay
    runs = sorted(p.name for p in (root / ".hml-versions/p/main/x/runs").iterdir())
    assert runs == [f"rx{i}.json" for i in (0, 1, 2, 4, 6)]
    kept = [*x[:3], x[4], x[6], *world["y"], world["z"], *world["w"]]
    for version in kept:
        assert version.verify()
    assert world["plain"].verify()
    assert [e["version"] for e in entries(x[0].storage, "p", "main", "x")] == [
        x[i].version for i in (0, 1, 2, 4, 6)
    ]
    assert ds(root, "x").resolved_version() == x[6].version  # reads by name: unchanged
    assert "nothing to remove" in ok(root, "gc", "--yes").stdout


def test_keep_counts_per_dataset_and_plain_datasets_always_stay(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    a = [write_version(root, "a", f"ra{i}") for i in range(4)]
    b = [write_version(root, "b", f"rb{i}") for i in range(2)]
    write(Dataset(Item, str(root), "p", "main", "a", versioned=False), 2)  # a's plain one
    report = json.loads(ok(root, "gc", "--keep", "2", "--format", "json").stdout)
    assert [d["version"] for d in report["remove"]] == [a[0].version, a[1].version]
    ok(root, "gc", "--keep", "0", "--yes")
    assert not any((root / v.directory).exists() for v in [*a, *b])
    assert (root / "p/main/a/a.chk").is_file()
    assert ds(root, "a").resolved_version() is None  # reads by name now see the plain one


def test_versioned_outside_runs_are_collected_too(tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    always = Dataset(Item, str(root), "p", "main", "v", versioned=True)
    write(always, 1)
    write(always, 2)
    ok(root, "gc", "--yes")
    assert len(entries(always.storage, "p", "main", "v")) == 1
    assert sum(1 for _ in ds(root, "v").open("r")) == 2


def test_dependency_checksums_are_found_at_any_depth() -> None:
    definition = {
        "dependencies": [
            {"chkFileChecksum": "a", "dependencies": [{"chkFileChecksum": "b"}]},
            {"chkFileChecksum": "c", "dependencies": []},
        ]
    }
    assert dependency_checksums(definition) == {"a", "b", "c"}


# -- hml datasets rm ----------------------------------------------------------------------------
def test_rm_refuses_a_models_training_dataset_unless_forced(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root, x = world["root"], world["x"]
    code, err = fails(root, capsys, "datasets", "rm", x[1].ref)
    assert code == 1
    err = err.strip()
    assert "\n" not in err and f"model clf version {world['model']}" in err and "--force" in err
    assert (root / x[1].directory / "x.chk").is_file()
    assert fails(root, capsys, "datasets", "rm", x[1].ref, "--yes")[0] == 1
    assert (root / x[1].directory / "x.chk").is_file()
    dry = ok(root, "datasets", "rm", x[1].ref, "--force").stdout
    assert f"would remove p/main/x@{x[1].version}" in dry and (root / x[1].directory).exists()
    ok(root, "datasets", "rm", x[1].ref, "--force", "--yes")
    assert not (root / x[1].directory).exists()


def test_rm_one_version_dry_run_then_yes(world: dict[str, Any]) -> None:
    root, x = world["root"], world["x"]
    before = files(root)
    out = ok(root, "datasets", "rm", f"p/main/x@{x[3].version}").stdout
    assert files(root) == before
    assert out.startswith(f"would remove p/main/x@{x[3].version}  ")
    assert "run again with --yes" in out
    out = ok(root, "datasets", "rm", f"p/main/x@{x[3].version}", "--yes").stdout
    assert f"removed p/main/x@{x[3].version}" in out
    assert not (root / x[3].directory).exists()
    assert not (root / f".hml-versions/p/main/x/{x[3].version}.json").exists()
    assert not (root / ".hml-versions/p/main/x/runs/rx3.json").exists()
    assert (root / x[4].directory / "x.chk").is_file()


def test_rm_by_name_needs_a_version_or_all_versions(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root = world["root"]
    code, err = fails(root, capsys, "datasets", "rm", "y")
    assert code == 2 and "give y@VERSION, --plain or --all-versions" in err
    assert "one version" in fails(root, capsys, "datasets", "rm", "y@v", "--all-versions")[1]
    out = ok(root, "datasets", "rm", "y", "--all-versions").stdout
    assert out.count("would remove ") == 2
    ok(root, "datasets", "rm", "y", "--all-versions", "--yes")
    assert not any((root / v.directory).exists() for v in world["y"])
    assert not (root / ".hml-versions/p/main/y").exists()
    # a plain-only name needs no version
    ok(root, "datasets", "rm", "plain", "--yes")
    assert not (root / "p/main/plain").exists()
    assert not (root / ".hml-versions/p/main/plain").exists()
    code, err = fails(root, capsys, "datasets", "rm", "x@nope")
    assert code != 0 and "has no version 'nope'" in err


def test_rm_all_versions_takes_the_plain_one_too_and_refuses_for_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bucket"
    v = write_version(root, "d", "r1")
    plain = Dataset(Item, str(root), "p", "main", "d", versioned=False)
    write(plain, 2)
    publish_model(root, plain)
    code, err = fails(root, capsys, "datasets", "rm", "d", "--all-versions", "--yes")
    assert code == 1 and "p/main/d is referenced by model clf" in err
    assert (root / v.directory).exists() and (root / "p/main/d/d.chk").exists()
    out = ok(root, "datasets", "rm", "d", "--all-versions", "--yes", "--force").stdout
    assert f"removed p/main/d@{v.version}" in out and "removed p/main/d " in out + " "
    assert not (root / "p/main/d").exists() and not (root / v.directory).parent.exists()
    assert not (root / ".hml-versions/p/main/d").exists()


# -- listing and showing versions ----------------------------------------------------------------
def test_list_shows_stable_names_with_their_versions(world: dict[str, Any]) -> None:
    root, x = world["root"], world["x"]
    rows = json.loads(ok(root, "datasets", "list", "--format", "json").stdout)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["p/main/plain", "p/main/w", "p/main/x", "p/main/y", "p/main/z"]
    assert all(r["branch"] == "main" and r["error"] is None for r in rows)
    assert by_id["p/main/x"]["versions"] == 7
    assert by_id["p/main/x"]["latest_version"] == x[6].version == by_id["p/main/x"]["version"]
    assert by_id["p/main/x"]["checksum"] == x[6].checksum and by_id["p/main/x"]["objects"] == 7
    assert by_id["p/main/plain"]["versions"] == 0
    assert by_id["p/main/plain"]["latest_version"] is None
    table = ok(root, "datasets", "list").stdout.splitlines()
    assert table[0].split() == [
        "dataset",
        "type",
        "chunks",
        "versions",
        "latest",
        "created",
        "checksum",
    ]
    x_row = next(line.split() for line in table if line.startswith("p/main/x "))
    assert x_row[3:5] == ["7", x[6].version]
    every = json.loads(ok(root, "datasets", "list", "--all-versions", "--format", "json").stdout)
    xs = [r for r in every if r["name"] == "x"]
    assert [r["version"] for r in xs] == [v.version for v in reversed(x)]  # newest first
    assert xs[0]["id"] == f"p/main/x@{x[6].version}"
    assert [r["latest"] for r in xs] == [True] + [False] * 6
    assert {r["run_id"] for r in xs} == {f"rx{i}" for i in range(7)}
    assert next(r for r in every if r["name"] == "plain")["version"] is None
    assert (
        len(
            json.loads(
                ok(
                    root, "datasets", "list", "--all-versions", "--format", "json", "--limit", "3"
                ).stdout
            )
        )
        == 3
    )


def test_show_the_latest_or_any_version_with_the_list_of_versions(world: dict[str, Any]) -> None:
    root, x = world["root"], world["x"]
    out = ok(root, "datasets", "show", "x").stdout
    assert f"p/main@{x[6].version}/x" in out
    assert f"{x[6].version}: the latest of 7 version(s)" in out
    for v in x:
        assert v.version in out and v.checksum[:12] in out
    shown = json.loads(ok(root, "datasets", "show", f"x@{x[2].version}", "--format", "json").stdout)
    assert shown["version"] == x[2].version and shown["latest"] is False
    assert shown["latest_version"] == x[6].version and shown["objects"] == 3
    assert shown["checksum"] == x[2].checksum
    assert [v["version"] for v in shown["versions"]] == [v.version for v in reversed(x)]
    assert shown["versions"][0]["run_id"] == "rx6" and shown["plain"] is None
    # a version's directory and a checksum prefix name that version too
    by_dir = json.loads(ok(root, "datasets", "show", x[3].directory, "--format", "json").stdout)
    assert by_dir["version"] == x[3].version
    by_sum = json.loads(ok(root, "datasets", "show", x[4].checksum[:10], "--format", "json").stdout)
    assert by_sum["version"] == x[4].version
    assert "not the latest" in ok(root, "datasets", "show", x[0].ref).stdout


def test_lineage_and_verify_take_name_at_version(world: dict[str, Any]) -> None:
    root, x = world["root"], world["x"]
    y0 = world["y"][0]
    out = ok(root, "datasets", "verify", y0.ref).stdout
    assert out.startswith(f"ok: p/main/y@{y0.version} {y0.checksum[:12]}: 16 chunks, 2 objects")
    assert ok(root, "datasets", "verify", "x").stdout.startswith(f"ok: p/main/x@{x[6].version}")
    tree = ok(root, "datasets", "lineage", f"p/main/z@{world['z'].version}").stdout
    assert f"p/main/z@{world['z'].version}" in tree
    assert y0.checksum[:12] in tree and x[2].checksum[:12] in tree


def test_a_project_lists_versions_under_their_branch(world: dict[str, Any]) -> None:
    from hypermodel.data import Project

    listed = Project(str(world["root"]), project="p", branch="main").datasets.list(
        pattern="^p/main/x"
    )
    assert len(listed) == 7 and {d.branch for d in listed} == {"main"}
    assert {d.version for d in listed} == {v.version for v in world["x"]}
    assert os.sep not in listed[0].version


def test_after_three_runs_of_a_real_pipeline_gc_keeps_what_the_last_one_made(
    hml_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from . import pipeline_app

    monkeypatch.chdir(tmp_path)  # outside any git repository
    app = pipeline_app.make_app().configure(root=str(hml_root))
    for n in (10, 20, 30):
        assert app.pipelines.run_all("shop", {"n": n}, workers=0).ok
    report = json.loads(ok(hml_root, "gc", "--format", "json").stdout)
    assert sorted(d["name"] for d in report["remove"]) == ["clean", "clean", "raw", "raw"]
    assert {d["run_id"] for d in report["remove"]}.isdisjoint({d["run_id"] for d in report["kept"]})
    ok(hml_root, "gc", "--yes")
    clean = Dataset(Item, str(hml_root), "shop", "main", "clean")
    assert sum(1 for _ in clean.open("r")) == 15 and clean.verify()
    assert app.pipelines.run_all("shop", {"n": 8}, workers=0).ok  # and runs go on
    assert sum(1 for _ in clean.open("r")) == 4
