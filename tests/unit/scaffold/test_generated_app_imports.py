"""Whatever the generators are asked for, the app they leave still imports and starts.

Every kind of task, Hypergol's standard chain on one class (Source -> SimpleTask -> Task, which
used to write a dependency cycle), joins, a model with blocks: after each command the app is
imported and its console script's --help runs in a fresh interpreter, and at the end the
generated project's own tests pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hypermodel.scaffold.fields import ScaffoldError
from hypermodel.scaffold.project import Plan, ProjectLayout, write_checked

from .conftest import hml, ok

STEPS = [
    ["data-model", "Item", "itemId:int:id", "value:float"],
    ["data-model", "Other", "itemId:int:id", "label:str"],
    ["data-model", "Word", "text:str:id", "count:int"],
    ["task", "LoadItems", "Item", "--source"],
    ["task", "CleanItems", "Item", "--simple"],  # Hypergol's SimpleTask
    ["task", "ExpandItems", "Item"],  # Hypergol's Task: the default
    ["task", "MakeOthers", "Other", "--one-to-many", "--input", "Item"],
    ["task", "JoinItems", "Item", "--one-to-one", "--input", "Item", "--input", "Other"],
    ["task", "CountWords", "Word", "--task", "--input", "Item"],
    ["task", "LoadWords", "Word", "--source"],
    ["pipeline", "Chain", "LoadItems", "CleanItems", "ExpandItems"],
    ["pipeline", "Single", "LoadItems"],
    ["pipeline", "Named", "LoadItems", "CleanItems", "Item"],
    ["pipeline", "Full", "LoadItems", "CleanItems", "MakeOthers", "JoinItems", "ExpandItems"],
    ["pipeline", "Words", "LoadItems", "CountWords", "LoadWords", "Word", "Item"],
    ["model-block", "Extra"],
    ["model", "PriceModel", "Item", "Other", "--block", "Dense", "--block", "Extra"],
    ["create_task", "Again", "Item", "--simple"],  # Hypergol's command spelling
    ["create-pipeline", "Twice", "LoadItems", "CleanItems", "Again", "ExpandItems"],
]


def _python(project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HML_")}
    env["PYTHONPATH"] = os.pathsep.join([str(project / "src"), str(project)])
    env["HML_ROOT"] = str(project / "bucket")
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _starts(project: Path) -> None:
    run = _python(project, "-c", "import sys; from shop_demo.app import main; main()", "--help")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pipelines" in run.stdout


def test_every_generator_leaves_an_app_that_imports(project: Path) -> None:
    _starts(project)
    for step in STEPS:
        ok(hml("new", *step, cwd=project))
        _starts(project)

    chain = (project / "src/shop_demo/pipelines/chain.py").read_text()
    # each dataset has one writer: the Task after the SimpleTask writes a third dataset
    assert 'outputDataset=data["items"]' in chain
    assert 'inputDatasets=[data["clean_items_items"]]' in chain
    assert 'outputDataset=data["expand_items_items"]' in chain
    assert chain.count('outputDataset=data["items"]') == 1
    for pipeline in ("chain", "single", "named", "full", "words", "twice", "price_model_training"):
        run = _python(
            project, "-c", "from shop_demo.app import main; main()", "pipelines", pipeline, "--help"
        )
        assert run.returncode == 0, (pipeline, run.stderr[-3000:])

    # the generated project's own tests pass: every pipeline runs end to end (the model's
    # training test is left out here: it trains with TensorFlow)
    tests = _python(
        project,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "not model",
        "tests",
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]


def test_names_that_would_break_the_app_are_refused(project: Path) -> None:
    for step in STEPS[:4]:
        ok(hml("new", *step, cwd=project))
    named_like_a_class = hml("new", "task", "Item", "Item", "--simple", cwd=project)
    assert "name of the data model class" in str(named_like_a_class.exception)
    shadows = hml("new", "task", "Datasets", "Item", "--simple", cwd=project)
    assert "uses itself" in str(shadows.exception)
    pipeline = hml("new", "pipeline", "Tasks", "LoadItems", cwd=project)
    assert "uses itself" in str(pipeline.exception)
    twice = hml("new", "pipeline", "Again", "LoadItems", "LoadItems", cwd=project)
    assert "twice" in str(twice.exception)
    model = hml("new", "model", "Item", "Item", "Other", cwd=project)
    assert "name of the data model class" in str(model.exception)
    assert not list((project / "src/shop_demo/pipelines").glob("again.py"))
    _starts(project)


def test_a_write_that_breaks_the_import_is_undone(project: Path) -> None:
    layout = ProjectLayout(project, "shop_demo")
    plan = Plan(project)
    broken = project / "src/shop_demo/pipelines/broken.py"
    plan.add(broken, "raise RuntimeError('generated code that does not import')\n")
    with pytest.raises(ScaffoldError, match="does not import"):
        write_checked(plan, layout)
    assert not broken.exists()
    _starts(project)


def test_hypergol_flags_and_model_block(project: Path) -> None:
    ok(hml("new", "data-model", "Item", "itemId:int:id", "value:float", "--dryrun", cwd=project))
    assert not (project / "src/shop_demo/data_models/item.py").exists()
    ok(hml("new", "data-model", "Item", "itemId:int:id", "value:float", cwd=project))
    for flag, base in (
        ("--simple", "hml.OneToOne"),
        ("--one-to-one", "hml.OneToOne"),
        ("--task", "hml.OneToMany"),
        (None, "hml.OneToMany"),  # `new task X Y` makes Hypergol's Task
    ):
        args = ["new", "task", "Step", "Item", "--dryrun"] + ([flag] if flag else [])
        assert f"class Step({base}):" in ok(hml(*args, cwd=project)).output
    result = ok(hml("new", "create_model_block", "ExampleBlock", "--dryrun", cwd=project))
    assert "class ExampleBlock(BaseTensorflowModelBlock):" in result.output
    ok(hml("new", "model-block", "ExampleBlock", cwd=project))
    assert (project / "src/shop_demo/models/blocks/example_block.py").is_file()
    assert (project / "src/shop_demo/models/blocks/__init__.py").is_file()
    again = hml("new", "model-block", "ExampleBlock", cwd=project)
    assert "refusing to overwrite" in str(again.exception)
    # a model reuses the existing block
    ok(hml("new", "model", "M", "Item", "Item", "--block", "ExampleBlock", cwd=project))
    help_text = ok(hml("new", "--help")).output
    assert "model-block" in help_text and "create_task" not in help_text
