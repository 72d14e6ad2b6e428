"""Every example and command of the Hypergol documentation (the tutorial and the
introduction), ported.

Imports change (``from hypergol import X`` becomes ``from hypermodel.hypergol import X``) and
so do the command spellings (``python3 -m hypergol.cli.create_task ...`` becomes ``python3 -m
hypermodel.cli.new create_task ...``, also ``hml new create_task ...``). A generated project is
an app package: its pipelines run through its console script instead of a generated shell
script, and its data models live in ``src/<package>/data_models/``.

Counts (32 snippets in the tutorial; the introduction has none):

- snippets total: 32
- run with imports changed only: 17 -- the two generated classes, setting up, defining,
  writing (both ways), reading (both ways), the task stubs (source, simple, loaded inputs,
  task), ``Delayed``, the TensorFlow conventions (two), ``GET /`` and ``HypergolProject``
- need more than imports: 12 -- the nine ``create_*`` commands and ``list_datasets`` (spelled
  ``python3 -m hypermodel.cli.new ...`` / ``hml datasets list``), the git and ``make_venv.sh``
  steps (``make_venv.sh`` is ``make test``), and the ``/output`` client (its ``print(`` lacks a
  parenthesis; ``ExampleOutput`` is the demo's ``Prediction``, served by an app that declares
  ``output_route``)
- cannot run: 3 -- ``pip3 install -r requirements.txt`` (dependencies are in pyproject.toml),
  ``MODEL_DIRECTORY = ...`` (the served model is the app's) and the printed ``/`` answer (an
  output; its ``"model"`` is checked)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from tests.seeds.conftest import BIN, install_console_script, sh
from tests.support import free_port, require_module, wait_for_port

NEW = [sys.executable, "-m", "hypermodel.cli.new"]  # was: python3 -m hypergol.cli.<command>


# -- Creating a project, data model classes, tasks and a pipeline: the commands --------------------
def test_tutorial_commands_make_a_project_that_runs(tmp_path: Path) -> None:
    # $ python3 -m hypergol.cli.create_project <ProjectName>
    sh([*NEW, "create_project", "ProjectName"], cwd=tmp_path)
    project = tmp_path / "project_name"  # camel-case name, snake-case directory
    assert (project / "pyproject.toml").is_file() and (project / ".gitignore").is_file()

    # $ git init / add / commit / remote add origin ... / push -u origin master
    # (the remote is a local bare repository standing in for GitHub)
    remote = tmp_path / "remote.git"
    sh(["git", "init", "-q", "--bare", str(remote)], cwd=tmp_path)
    git = ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
    sh(["git", "init", "-q", "-b", "master"], cwd=project)
    sh(["git", "add", "."], cwd=project)
    sh([*git, "commit", "-q", "-m", "first commit"], cwd=project)
    sh(["git", "remote", "add", "origin", str(remote)], cwd=project)
    sh(["git", "push", "-q", "-u", "origin", "master"], cwd=project)
    # $ ./make_venv.sh; source .venv/bin/activate; pip3 install -r requirements.txt
    # are `make test` in a generated project (a .venv with the project installed; its
    # dependencies are in pyproject.toml): tests/integration/test_scaffold_project.py runs it.

    # $ python3 -m hypergol.cli.create_data_model ExampleClass classId:int:id value:float name:str creation:datetime
    fields = ["classId:int:id", "value:float", "name:str", "creation:datetime"]
    shown = sh([*NEW, "create_data_model", "ExampleClass", *fields, "--dryrun"], cwd=project)
    assert "class ExampleClass(hml.BaseData" in shown.stdout
    model_file = project / "src/project_name/data_models/example_class.py"
    assert not model_file.exists()  # --dryrun displays the code, writes nothing
    sh([*NEW, "create_data_model", "ExampleClass", *fields], cwd=project)
    assert "creation: datetime" in model_file.read_text()

    # $ python3 -m hypergol.cli.create_data_model OtherExample classId:int:id name:str "values:List[ExampleClass]" "times:List[time]"
    sh(
        [*NEW, "create_data_model", "OtherExample", "classId:int:id", "name:str",
         "values:List[ExampleClass]", "times:List[time]"],
        cwd=project,
    )  # fmt: skip
    other = (project / "src/project_name/data_models/other_example.py").read_text()
    assert "values: list[ExampleClass]" in other and "times: list[time]" in other

    # $ python3 -m hypergol.cli.create_task LoadData OtherExample --source
    sh([*NEW, "create_task", "LoadData", "OtherExample", "--source"], cwd=project)
    # $ python3 -m hypergol.cli.create_task ExampleSimpleTask OtherExample --simple
    sh([*NEW, "create_task", "ExampleSimpleTask", "OtherExample", "--simple"], cwd=project)
    # $ python3 -m hypergol.cli.create_task ExampleTask OtherExample
    sh([*NEW, "create_task", "ExampleTask", "OtherExample"], cwd=project)
    tasks = project / "src/project_name/tasks"
    assert "def source_iterator(self)" in (tasks / "load_data.py").read_text()
    assert "OneToOne" in (tasks / "example_simple_task.py").read_text()
    assert "self.output.append" in (tasks / "example_task.py").read_text()

    # $ python3 -m hypergol.cli.create_pipeline PipelineName Source1 Task1 Task2 ExampleClass1 ExampleClass2
    sh(
        [*NEW, "create_pipeline", "PipelineName", "LoadData", "ExampleSimpleTask",
         "ExampleTask", "OtherExample"],
        cwd=project,
    )  # fmt: skip
    assert (project / "src/project_name/pipelines/pipeline_name.py").is_file()

    # Hypergol runs ./run_tests.sh (nosetests); the generated tests are pytest tests
    data = tmp_path / "data"
    env = {"PYTHONPATH": str(project / "src"), "HML_ROOT": str(data)}
    tested = sh(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_example_class.py", "tests/test_other_example.py"],
        cwd=project, env=env,
    )  # fmt: skip
    assert " passed" in tested.stdout and "failed" not in tested.stdout

    # Hypergol's ./pipeline_name.sh is the app's console script
    scripts = install_console_script(project, tmp_path / "installed")
    ran = sh([str(scripts / "project-name"), "pipelines", "pipeline_name", "run-all"], project, env)
    assert "example_task" in ran.stdout
    (chk,) = data.glob("project_name/main@*/example_task_other_examples/*.chk")
    assert len(json.loads(chk.read_text())) == 17  # the .def and 16 chunks

    # $ python -m hypergol.cli.list_datasets <data_directory> --pattern="<regex>"
    listed = sh([str(BIN / "hml"), "--root", str(data), "datasets", "list",
                 "--pattern=simple"], cwd=project)  # fmt: skip
    assert "example_simple_task_other_examples" in listed.stdout
    assert "project_name/main/other_examples" not in listed.stdout
    code = sh([str(BIN / "hml"), "--root", str(data), "datasets", "list", "--as-code",
               "--pattern=simple"], cwd=project)  # fmt: skip
    assert "hml.Dataset(dataType=OtherExample" in code.stdout

    # $ python -m hypergol.cli.create_model_block ExampleBlock
    sh([*NEW, "create_model_block", "ExampleBlock"], cwd=project)
    assert (project / "src/project_name/models/blocks/example_block.py").is_file()
    # $ python -m hypergol.cli.create_model ExampleModel TrainingClass EvaluationClass InputClass OutputClass Block1 Block2
    for name, extra in (
        ("TrainingClass", ["x:float", "y:float"]),
        ("EvaluationClass", ["y:float"]),
        ("InputClass", ["x:float"]),
        ("OutputClass", ["score:float"]),
    ):
        sh([*NEW, "create_data_model", name, "rowId:int:id", *extra], cwd=project)
    sh(
        [*NEW, "create_model", "ExampleModel", "TrainingClass", "EvaluationClass",
         "InputClass", "OutputClass", "Block1", "Block2"],
        cwd=project,
    )  # fmt: skip
    model = project / "src/project_name/models/example_model"
    assert "class ExampleModel" in (model / "example_model.py").read_text()
    assert (
        "class ExampleModelBatchProcessor"
        in (model / "example_model_batch_processor.py").read_text()
    )
    for block in ("block1", "block2"):
        assert (project / f"src/project_name/models/blocks/{block}.py").is_file()
    # the generated model's own test trains, exports, reloads and serves it (TensorFlow)
    require_module("tensorflow")
    tested = sh(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_model_example_model.py"],
        cwd=project, env=env, timeout=400,
    )  # fmt: skip
    assert "1 passed" in tested.stdout


# -- The generated classes, as the tutorial shows them ------------------------------------------------
EXAMPLE_CLASS = """
from datetime import datetime
from hypermodel.hypergol import BaseData


class ExampleClass(BaseData):

    def __init__(self, classId: int, name: str, creation: datetime):
        self.classId = classId
        self.name = name
        self.creation = creation

    def get_id(self):
        return (self.classId, )

    def to_data(self):
        data = self.__dict__.copy()
        data['creation'] = data['creation'].isoformat()
        return data

    @classmethod
    def from_data(cls, data):
        data['creation'] = datetime.fromisoformat(data['creation'])
        return cls(**data)
"""

OTHER_EXAMPLE = """
from typing import List
from datetime import date
from hypermodel.hypergol import BaseData
from data_models.example_class import ExampleClass


class OtherExample(BaseData):

    def __init__(self, classId: int, name: str, values: List[ExampleClass], dates: List[date]):
        self.classId = classId
        self.name = name
        self.values = values
        self.dates = dates

    def get_id(self):
        return (self.classId, )

    def to_data(self):
        data = self.__dict__.copy()
        data['values'] = [v.to_data() for v in data['values']]
        data['dates'] = [v.isoformat() for v in data['dates']]
        return data

    @classmethod
    def from_data(cls, data):
        data['values'] = [ExampleClass.from_data(v) for v in data['values']]
        data['dates'] = [date.fromisoformat(v) for v in data['dates']]
        return cls(**data)
"""


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<full_path>/<project_name>`` with the tutorial's two classes in ``data_models/``."""
    project = tmp_path / "project_name"
    (project / "data_models").mkdir(parents=True)
    (project / "data_models/__init__.py").write_text("")
    (project / "data_models/example_class.py").write_text(EXAMPLE_CLASS)
    (project / "data_models/other_example.py").write_text(OTHER_EXAMPLE)
    for name in ("data_models", "data_models.example_class", "data_models.other_example"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the snippet's sys.path.insert is undone
    yield project
    for name in ("data_models", "data_models.example_class", "data_models.other_example"):
        sys.modules.pop(name, None)


def test_datasets_written_and_read(project_dir: Path, tmp_path: Path) -> None:
    # First set things up:
    import sys

    sys.path.insert(0, str(project_dir))  # '<full_path>/<project_name>'
    from data_models.example_class import ExampleClass
    from data_models.other_example import OtherExample

    from hypermodel.hypergol import Dataset

    # Defining datasets
    dataset=Dataset(
        dataType=OtherExample,
        location=str(tmp_path / "data_location"),
        project='project_name',
        branch='test_branch',
        name='otherExamples',
        chunkCount=16,
        repoData=None
    )  # fmt: skip

    # Writing datasets
    with dataset.open("w") as datasetWriter:
        for k in range(100):
            datasetWriter.append(OtherExample(
                classId=k,
                name=str(k),
                values=[
                    ExampleClass(classId=k, name=str(k), creation=datetime.now()),
                    ExampleClass(classId=k, name=str(k), creation=datetime.now())
                ],
                dates=[date.today(), date.today()]
            ))  # fmt: skip

    # a .def at open, a .chk at close; Hypergol's layout and names
    folder = tmp_path / "data_location/project_name/test_branch/otherExamples"
    assert (folder / "otherExamples.def").is_file() and (folder / "otherExamples.chk").is_file()
    assert len(list(folder.glob("otherExamples_*.jsonl.gz"))) == 16

    # "If you try to insert a class other than the type of the dataset an exception will be raised"
    other = Dataset(dataType=OtherExample, location=str(tmp_path / "data_location"),
                    project='project_name', branch='test_branch', name='wrongType')  # fmt: skip
    with pytest.raises(Exception, match="OtherExample"), other.open("w") as writer:
        writer.append(ExampleClass(classId=1, name="1", creation=datetime.now()))

    # opened directly: close() is the caller's
    direct = Dataset(dataType=OtherExample, location=str(tmp_path / "data_location"),
                     project='project_name', branch='test_branch', name='direct')  # fmt: skip
    direct.add_dependency(dataset)
    otherExample = OtherExample(classId=1, name="1", values=[], dates=[date(2020, 1, 1)])
    datasetWriter = direct.open("w")
    ...
    datasetWriter.append(otherExample)
    ...
    datasetWriter.close()
    definition = json.loads((folder.parent / "direct/direct.def").read_text())
    assert definition["dependencies"][0]["name"] == "otherExamples"
    assert definition["dependencies"][0]["chkFileChecksum"] == dataset.checksum

    # Reading datasets
    printed = []
    with dataset.open("r") as datasetReader:
        for data in datasetReader:
            printed.append(data)
    assert sorted(o.classId for o in printed) == list(range(100))
    assert all(isinstance(o.values[0], ExampleClass) for o in printed)
    assert all(o.dates == [date.today(), date.today()] for o in printed)

    allData = list(dataset.open("r"))
    assert sorted(allData, key=lambda o: o.classId)[5].values[1].name == "5"
    assert list(direct.open("r"))[0].dates == [date(2020, 1, 1)]  # noqa: RUF015


def test_tasks_loaded_inputs_and_delayed(project_dir: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(project_dir))
    from data_models.example_class import ExampleClass
    from data_models.other_example import OtherExample

    from hypermodel.hypergol import Dataset, Delayed, Pipeline, SimpleTask, Source, Task

    def ds(name: str, dataType: type = OtherExample) -> Any:
        return Dataset(dataType=dataType, location=str(tmp_path / "data"), project="project_name",
                       branch="main", name=name, chunkCount=16)  # fmt: skip

    class LoadData(Source):
        def source_iterator(self):
            for data in range(20):  # noqa: UP028
                yield data

        def run(self, data):
            return OtherExample(classId=data, name=str(data), values=[], dates=[date(2020, 1, 1)])

    class LoadNames(Source):
        def source_iterator(self):
            yield from range(20)

        def run(self, data):
            return ExampleClass(classId=data, name=f"name-{data}", creation=datetime(2020, 1, 1))

    class ExampleSimpleTask(SimpleTask):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.map1 = None

        def init(self):
            self.map1 = {value.get_id(): value for value in self.loadedData[0]}

        def run(self, inputObject1, inputObject2):
            value = self.map1.get(inputObject2.get_id(), None)
            outputObject = OtherExample(classId=inputObject1.classId, name=value.name,
                                        values=[value], dates=inputObject2.dates)  # fmt: skip
            return outputObject

    class CannotPickle:
        def __init__(self, value1=None, value2=None):
            self.value = value1 or value2
            self.pid = os.getpid()

    class ExampleTask(Task):
        def __init__(self, value1, value2, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.value1 = value1
            self.value2 = value2

        def init(self):
            # TODO: initialise members that are NOT "Delayed" here (e.g. load a spacy model)
            pass

        def run(self, exampleInputObject1):
            for k in range(2):
                data = OtherExample(classId=exampleInputObject1.classId * 10 + k,
                                    name=f"{self.value1.value}-{self.value1.pid}-{self.value2}",
                                    values=[], dates=[])  # fmt: skip
                self.output.append(data)

    raw, names, joined, split = ds("raw"), ds("names", ExampleClass), ds("joined"), ds("split")
    canPickle = "ok"
    exampleTask = ExampleTask(
        value1=Delayed(CannotPickle, value1=123),
        value2=canPickle,
        inputDatasets=[joined],
        outputDataset=split,
    )
    Pipeline(
        tasks=[
            LoadData(outputDataset=raw),
            LoadNames(outputDataset=names),
            ExampleSimpleTask(inputDatasets=[raw, raw], outputDataset=joined, loadedInputs=[names]),
            exampleTask,
        ]
    ).run(threads=2)

    out = sorted(joined.open("r"), key=lambda o: o.classId)
    assert [o.name for o in out] == [f"name-{k}" for k in range(20)]
    assert out[3].values[0].name == "name-3"
    result = list(split.open("r"))
    assert sorted(o.classId for o in result) == sorted(
        k * 10 + j for k in range(20) for j in range(2)
    )
    # the Delayed member was made inside the workers, not in this process
    made = {o.name for o in result}
    assert all(n.startswith("123-") and n.endswith("-ok") for n in made)
    assert str(os.getpid()) not in {n.split("-")[1] for n in made}


def test_hypergol_project_dataset_factory(project_dir: Path, tmp_path: Path) -> None:
    from tests.support import git_repo

    git_repo(project_dir, {"README.md": "project\n"})
    data_directory = tmp_path / "data_directory"
    import sys

    sys.path.insert(0, str(project_dir))  # '<project_directory>'
    from data_models.example_class import ExampleClass

    from hypermodel.hypergol import HypergolProject

    hypergolProject=HypergolProject(
        projectDirectory=str(project_dir),
        dataDirectory=str(data_directory)
    )  # fmt: skip
    exampleClasses = hypergolProject.datasetFactory.get(
        dataType=ExampleClass, name="example_classes"
    )

    with exampleClasses.open("w") as writer:
        writer.append(ExampleClass(classId=1, name="one", creation=datetime(2020, 1, 1)))
    (chk,) = data_directory.glob("project_name/main/example_classes/example_classes.chk")
    definition = json.loads(chk.with_suffix(".def").read_text())
    assert definition["repo"]["comitterName"] == "Ada Lovelace"  # the code state, recorded
    assert [o.name for o in exampleClasses.open("r")] == ["one"]


# -- Creating a Tensorflow model: the conventions between batch processor, manager and model -------------
def test_tensorflow_model_conventions() -> None:
    tf = require_module("tensorflow")
    value1, values = [1, 2], [["a", "b"], ["c"]]

    # in ExampleModelBatchProcessor.process_training_batch()
    inputs = {
        'exampleInput1': tf.constant(value1, dtype=tf.int32),
        'exampleInput2': tf.ragged.constant(values, dtype=tf.string).to_tensor()
    }  # fmt: skip

    class ExampleModel(tf.keras.Model):
        # in ExampleModel
        def get_loss(self, targets, training, exampleInput1, exampleInput2):
            return tf.reduce_sum(tf.cast(exampleInput1, tf.float32)) - targets

        @tf.function(input_signature=[
            tf.TensorSpec(shape=[None], dtype=tf.int32, name='exampleInput1'),
            tf.TensorSpec(shape=[None, None], dtype=tf.string, name='exampleInput2')
        ])  # fmt: skip
        def get_outputs(self, exampleInput1, exampleInput2):
            return exampleInput1 * 2

    model = ExampleModel()
    targets = 1.0
    # in TensorflowModelManager
    loss = model.get_loss(targets=targets, training=True, **inputs)
    assert float(loss) == 2.0
    assert model.get_outputs(**inputs).numpy().tolist() == [2, 4]


# -- Deploying a model: the server's "/" and "/output" ----------------------------------------------------
# Hypergol's generated server answers the model's long name on "/" and takes a list of inputs on
# POST /output. A ported app declares that route with output_route in its initialiser; this one
# is the demo app (console script `wines`, trained first) with the route added beside /predict.
SERVED_APP = """
from hypermodel import hml
from hypermodel.hypergol import output_route
from wines.app import app
from wines.data import Prediction, Wine
from wines.pipeline import MODEL


@hml.inference(app.inference)
def hypergol_output(inference_app):
    @output_route(inference_app, input=Wine, output=Prediction, model=MODEL)
    def output(wines):
        model = inference_app.get_model(MODEL).model
        probabilities = model.predict_proba([wine.features for wine in wines])
        return [Prediction(cultivar=int(p.argmax()), probabilities=[round(float(v), 4) for v in p])
                for p in probabilities]


app.start()
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo app trained (`wines pipelines wines run-all`), then served with POST /output
    on a free port (Hypergol's ./serve_<model_name>.sh starts its generated server)."""
    require_module("wines")
    root = tmp_path_factory.mktemp("served")
    env = {**os.environ, "HML_ROOT": str(root / "bucket"), "HML_AUTHOR": "alice@example.org"}
    trained = subprocess.run([str(BIN / "wines"), "pipelines", "wines", "run-all"], cwd=root,
                             env=env, capture_output=True, text=True, timeout=400, check=False)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    (root / "served_app.py").write_text(SERVED_APP)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(root / "served_app.py"), "inference", "run-prod",
         "--port", str(port), "--host", "127.0.0.1"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, server, timeout=60)
        time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", root / "bucket"
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_model_long_name_from_the_index(served: Any) -> None:
    import requests

    url, _ = served
    response = json.loads(requests.get(url, headers={"accept": "application/json"}).text)
    modelLongName = response["model"]
    assert modelLongName.startswith("wine-classifier_")


def test_output_route_list_in_list_out(served: Any) -> None:
    import requests

    url, bucket = served
    from wines.data import (
        Prediction as ExampleOutput,
    )  # was: from data_models.example_output import ExampleOutput
    from wines.data import Wine

    from hypermodel.hypergol import Dataset

    ds = Dataset(dataType=Wine, location=str(bucket), project="wines", branch="main", name="test")

    with ds.open("r") as dsr:
        values = [value.to_data() for value in islice(dsr, 10)]

    response = requests.post(
        f'{url}/output',
        headers={
            'accept': 'application/json',
            'Content-Type': 'application/json',
        },
        data=json.dumps(values)
    )  # fmt: skip
    outputs = [ExampleOutput.from_data(v) for v in json.loads(response.text)]
    print(response.headers["x-model-long-name"])
    assert response.status_code == 200 and len(outputs) == 10
    assert response.headers["x-model-long-name"].startswith("wine-classifier_")
    assert response.headers["x-model-long-name"] == requests.get(url).json()["model"]
    # the outputs are the model's: a list in, the list out, in the same order
    with ds.open("r") as dsr:
        wines = list(islice(dsr, 10))
    one_by_one = [requests.post(f"{url}/output", json=v, timeout=10).json() for v in values[:3]]
    assert one_by_one == [o.to_data() for o in outputs[:3]]  # one record (an object): one output
    assert sum(o.cultivar == w.cultivar for o, w in zip(outputs, wines, strict=True)) >= 8
    assert all(abs(sum(o.probabilities) - 1) < 1e-3 for o in outputs)
    # a record that is not a Wine is refused with the record and the field named
    bad = requests.post(f"{url}/output", json=[values[0], {"wineId": 1}], timeout=10)
    assert bad.status_code == 422 and "1.features" in bad.text
