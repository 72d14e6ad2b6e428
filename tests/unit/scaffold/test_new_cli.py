"""`hml new ...`: the files each command writes, --dry-run, the no-overwrite rule, the checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hypermodel.scaffold.fields import ScaffoldError
from tests.support import REPO

from .conftest import hml, ok


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_new_project_layout(project: Path) -> None:
    files = _files(project)
    assert {
        "pyproject.toml",
        "README.md",
        "Makefile",
        ".gitignore",
        "Dockerfile",
        ".dockerignore",
        "src/shop_demo/app.py",
        "src/shop_demo/pipelines/__init__.py",
        "src/shop_demo/pipelines/demo.py",
        "src/shop_demo/data_models/__init__.py",
        "src/shop_demo/tasks/__init__.py",
        "src/shop_demo/models/__init__.py",
        "tests/test_app.py",
    } <= files
    pyproject = (project / "pyproject.toml").read_text()
    assert f"hypermodel @ {REPO.as_uri()}" in pyproject
    assert 'shop-demo = "shop_demo.app:main"' in pyproject
    assert 'package = "shop_demo"' in pyproject
    readme = (project / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_new_project_has_a_dockerfile_for_image_build(project: Path) -> None:
    """`shop-demo image build` needs a Dockerfile: the same BASE_IMAGE and HML_GIT_COMMIT
    arguments as the repository's, and the app's console script as the ENTRYPOINT."""
    lines = (project / "Dockerfile").read_text().splitlines()
    instructions = [line for line in lines if line and not line.startswith((" ", "#"))]
    assert instructions[:2] == ["ARG BASE_IMAGE=python:3.11-slim", "FROM ${BASE_IMAGE}"]
    assert "ARG HML_GIT_COMMIT=" in instructions
    assert "ENV HML_GIT_COMMIT=${HML_GIT_COMMIT}" in instructions
    assert any(
        i.startswith('LABEL org.opencontainers.image.revision="${HML_GIT_COMMIT}"')
        for i in instructions
    )
    assert 'ENTRYPOINT ["shop-demo"]' in instructions
    for copy in [i for i in instructions if i.startswith("COPY ")]:
        for source in copy.split()[1:-1]:
            assert (project / source).exists(), source
    ignored = (project / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".hml"} <= set(ignored)


def test_hypermodel_spec_defaults_to_where_hypermodel_was_installed_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HML_SOURCE", raising=False)
    ok(hml("new", "project", "Plain", "--directory", str(tmp_path)))
    # make venv installs this checkout (editable): the project depends on this very checkout,
    # which installs anywhere this one does (the index's "hypermodel" is another project)
    repo_uri = Path(__file__).resolve().parents[3].as_uri()
    text = (tmp_path / "plain/pyproject.toml").read_text()
    assert f'dependencies = ["hypermodel @ {repo_uri}"]' in text
    from importlib import metadata

    import hypermodel.scaffold.generators as gen
    from hypermodel import __version__

    class FromIndex:  # installed from an index: no direct_url.json
        version = __version__

        def read_text(self, name: str) -> None:
            return None

    monkeypatch.setattr(metadata, "distribution", lambda name: FromIndex())
    minor = ".".join(__version__.split(".")[:2])
    assert gen.default_hypermodel_spec() == f"hypermodel>={minor}"
    monkeypatch.setenv("HML_SOURCE", "hypermodel[serve]==0.2.0")
    ok(hml("new", "project", "Pinned", "--directory", str(tmp_path)))
    assert '"hypermodel[serve]==0.2.0"' in (tmp_path / "pinned/pyproject.toml").read_text()


def test_new_project_refuses_a_non_empty_directory(project: Path) -> None:
    result = hml("new", "project", "ShopDemo", "--directory", str(project.parent))
    assert isinstance(result.exception, ScaffoldError)
    assert "not empty" in str(result.exception)


def test_project_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = ok(hml("new", "project", "Dry", "--directory", str(tmp_path), "--dry-run"))
    assert "# ---- src/dry/app.py ----" in result.output
    assert "app = hml.HmlApp(" in result.output
    assert list(tmp_path.iterdir()) == []


def test_data_model_dry_run_prints_and_writes_nothing(project: Path) -> None:
    before = _files(project)
    result = ok(
        hml(
            "new",
            "data-model",
            "ExampleClass",
            "classId:int:id",
            "value:float",
            "creation:datetime",
            "--dry-run",
            cwd=project,
        )
    )
    assert 'class ExampleClass(hml.BaseData, id="classId"):' in result.output
    assert "from datetime import datetime" in result.output
    assert "def test_example_class_round_trip" in result.output
    assert _files(project) == before


def test_data_model_writes_class_and_test_and_never_overwrites(project: Path) -> None:
    ok(hml("new", "data-model", "ExampleClass", "classId:int:id", "name:str", cwd=project))
    model = project / "src/shop_demo/data_models/example_class.py"
    test = project / "tests/test_example_class.py"
    assert model.is_file() and test.is_file()
    model.write_text(model.read_text() + "\n# edited by hand\n")
    result = hml("new", "data-model", "ExampleClass", "classId:int:id", cwd=project)
    assert isinstance(result.exception, ScaffoldError)
    assert str(model) in str(result.exception) and "refusing to overwrite" in str(result.exception)
    assert model.read_text().endswith("# edited by hand\n")


def test_write_is_all_or_nothing(project: Path) -> None:
    test = project / "tests/test_example_class.py"
    test.write_text("# mine\n")
    result = hml("new", "data-model", "ExampleClass", "classId:int:id", cwd=project)
    assert isinstance(result.exception, ScaffoldError) and str(test) in str(result.exception)
    assert not (project / "src/shop_demo/data_models/example_class.py").exists()
    assert test.read_text() == "# mine\n"


def test_data_model_checks_referenced_classes_exist(project: Path) -> None:
    result = hml("new", "data-model", "Basket", "basketId:int:id", "items:List[Item]", cwd=project)
    assert isinstance(result.exception, ScaffoldError)
    assert "Item" in str(result.exception) and "hml new data-model" in str(result.exception)
    ok(hml("new", "data-model", "Item", "itemId:int:id", "price:float", cwd=project))
    ok(hml("new", "data-model", "Basket", "basketId:int:id", "items:List[Item]", cwd=project))
    source = (project / "src/shop_demo/data_models/basket.py").read_text()
    assert "from shop_demo.data_models.item import Item" in source
    assert "items: list[Item]" in source


def test_data_model_multiple_ids_and_no_id(project: Path) -> None:
    ok(hml("new", "data-model", "Pair", "a:int:id", "b:str:id", cwd=project))
    assert 'id=("a", "b")' in (project / "src/shop_demo/data_models/pair.py").read_text()
    ok(hml("new", "data-model", "Loose", "x:float", cwd=project))
    loose = (project / "src/shop_demo/data_models/loose.py").read_text()
    assert "class Loose(hml.BaseData):" in loose
    assert "hml.Dataset" not in (project / "tests/test_loose.py").read_text()


def test_commands_need_a_project(tmp_path: Path) -> None:
    result = hml("new", "data-model", "Thing", "a:int:id", cwd=tmp_path)
    assert isinstance(result.exception, ScaffoldError)
    assert "no hypermodel project found" in str(result.exception)


def test_project_option_and_nested_working_directory(project: Path, tmp_path: Path) -> None:
    ok(hml("new", "data-model", "Thing", "a:int:id", "--project", str(project), cwd=tmp_path))
    ok(hml("new", "data-model", "Other", "a:int:id", cwd=project / "src" / "shop_demo"))
    assert (project / "src/shop_demo/data_models/other.py").is_file()


def _models(project: Path) -> None:
    ok(hml("new", "data-model", "Item", "itemId:int:id", "price:float", cwd=project))
    ok(hml("new", "data-model", "Label", "labelId:str:id", "text:str", cwd=project))
    ok(hml("new", "data-model", "Total", "itemId:int:id", "sum:float", cwd=project))


@pytest.mark.parametrize(
    ("flag", "base"),
    [
        ("--source", "hml.Source"),
        ("--one-to-one", "hml.OneToOne"),
        ("--one-to-many", "hml.OneToMany"),
    ],
)
def test_task_kinds(project: Path, flag: str, base: str) -> None:
    _models(project)
    ok(
        hml("new", "task", "MakeTotals", "Total", flag, "--input", "Item", cwd=project)
        if flag != "--source"
        else hml("new", "task", "MakeTotals", "Total", flag, cwd=project)
    )
    source = (project / "src/shop_demo/tasks/make_totals.py").read_text()
    assert f"class MakeTotals({base}):" in source
    if flag != "--source":
        assert "def run(self, item: Item)" in source
        assert "itemId=item.itemId" in source  # the id is carried: same chunk
    assert (project / "tests/test_make_totals.py").is_file()


def test_task_errors(project: Path) -> None:
    _models(project)
    bad = hml("new", "task", "Load", "Item", "--source", "--input", "Item", cwd=project)
    assert "has no input datasets" in str(bad.exception)
    missing = hml("new", "task", "Load", "Nope", cwd=project)
    assert "Nope" in str(missing.exception)
    mismatch = hml(
        "new", "task", "Join", "Total", "--input", "Item", "--input", "Label", cwd=project
    )
    assert "id types differ" in str(mismatch.exception)
    assert not (project / "src/shop_demo/tasks/join.py").exists()


def test_pipeline_wires_tasks_through_datasets(project: Path) -> None:
    _models(project)
    ok(hml("new", "task", "LoadItems", "Item", "--source", cwd=project))
    ok(hml("new", "task", "SumItems", "Total", "--input", "Item", cwd=project))
    ok(hml("new", "pipeline", "Totals", "LoadItems", "SumItems", "Item", cwd=project))
    source = (project / "src/shop_demo/pipelines/totals.py").read_text()
    assert 'LoadItems(\n            outputDataset=data["items"],' in source
    assert 'inputDatasets=[data["items"]]' in source
    assert 'outputDataset=data["totals"]' in source
    assert (project / "tests/test_pipeline_totals.py").is_file()


def test_pipeline_errors(project: Path) -> None:
    _models(project)
    ok(hml("new", "task", "SumItems", "Total", "--input", "Item", cwd=project))
    unordered = hml("new", "pipeline", "Totals", "SumItems", cwd=project)
    assert "no task before it" in str(unordered.exception)
    no_task = hml("new", "pipeline", "Totals", "Item", cwd=project)
    assert "names no task" in str(no_task.exception)
    same = hml("new", "pipeline", "SumItems", "SumItems", cwd=project)
    assert "name of its task" in str(same.exception)
    unknown = hml("new", "pipeline", "Totals", "SumItems", "Ghost", cwd=project)
    assert "Ghost" in str(unknown.exception)


def test_model_dry_run(project: Path) -> None:
    _models(project)
    result = ok(
        hml(
            "new",
            "model",
            "PriceModel",
            "Item",
            "Total",
            "--block",
            "Dense",
            "--dry-run",
            cwd=project,
        )
    )
    for piece in (
        "class PriceModel(BaseTensorflowModel):",
        "class PriceModelBatchProcessor(BaseBatchProcessor):",
        "class Dense(BaseTensorflowModelBlock):",
        "def train_price_model(",
        "def serve(",
        "importorskip",
    ):
        assert piece in result.output
    assert not (project / "src/shop_demo/models/price_model").exists()


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    hml_bin = Path(sys.executable).parent / "hml"
    out = subprocess.run(
        [str(hml_bin), "new", "data-model", "Thing", "value:float:id"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "only int and str" in out.stderr
