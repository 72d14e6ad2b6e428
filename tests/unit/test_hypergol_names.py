"""Hypergol's names, where a porting user looks for them: `hypermodel.hypergol` and `hml`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from hypermodel import hml


def test_hypergol_names_are_hypermodels_classes() -> None:
    from hypermodel import hypergol
    from hypermodel.data.tasks import OneToMany, OneToOne

    assert hypergol.SimpleTask is OneToOne is hml.SimpleTask
    assert hypergol.Task is OneToMany
    assert hypergol.Source is hml.Source
    assert hypergol.BaseData is hml.BaseData
    assert hypergol.Dataset is hml.Dataset
    assert hypergol.Delayed is hml.Delayed
    # hml.Task stays the pipeline DSL's task (today's API)
    from hypermodel.dsl.pipeline import Task as DslTask

    assert hml.Task is DslTask
    for name in hypergol.__all__:
        if not name.startswith(("BaseTensorflow", "BaseBatch", "TensorflowModel")):
            assert getattr(hypergol, name) is not None


def test_importing_the_names_stays_light() -> None:
    code = (
        "import sys; from hypermodel.hypergol import RepoData, Pipeline; import hypermodel.hypergol;"
        "assert 'tensorflow' not in sys.modules; assert 'hypermodel.data.dataset' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class Item(hml.BaseData):
    def __init__(self, itemId: int, value: float) -> None:
        self.itemId = itemId
        self.value = value

    def get_id(self) -> tuple[int]:
        return (self.itemId,)


class Load(hml.Source):
    def source_iterator(self) -> Iterator[int]:
        yield from range(20)

    def run(self, k: int) -> Item:
        return Item(itemId=k, value=k / 2)


def test_a_hypergol_pipeline_ported_by_imports_only(tmp_path: Path) -> None:
    from hypermodel.hypergol import (
        Dataset,
        HypergolProject,
        Pipeline,
        RepoData,
        SimpleTask,
        Task,
    )

    class Double(SimpleTask):
        def run(self, item: Item) -> Item:
            return Item(itemId=item.itemId, value=item.value * 2)

    class Split(Task):
        def run(self, item: Item) -> None:
            for k in range(2):
                self.output.append(Item(itemId=item.itemId * 100 + k, value=item.value))

    project = HypergolProject(projectDirectory=str(tmp_path / "MyProject"), dataDirectory=tmp_path)
    assert project.project == "my_project"
    items = project.datasetFactory.get(dataType=Item, name="items")
    doubled = project.datasetFactory.get(dataType=Item, name="doubled")
    split = Dataset(
        dataType=Item,
        location=str(tmp_path),
        project="my_project",
        branch=project.branch,
        name="split",
        chunkCount=16,
        repoData=RepoData.get_dummy(),
    )
    Pipeline(
        tasks=[
            Load(outputDataset=items),
            Double(inputDatasets=[items], outputDataset=doubled),
            Split(inputDatasets=[doubled], outputDataset=split),
        ]
    ).run(threads=2)
    values = sorted(obj.value for obj in doubled.open("r"))
    assert values == [k * 1.0 for k in range(20)]
    assert len(list(split.open("r"))) == 40
    assert RepoData.from_data(RepoData.get_dummy().to_data()) == RepoData.get_dummy()
