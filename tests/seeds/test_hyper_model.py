"""Every example and command of the Hyper Model documentation (its README: getting started,
the car-crashes walkthrough, the command line), ported.

``from hypermodel import hml`` is already the import; the walkthrough's project (``demo_pkg/``:
``setup.py`` and ``crashed/{start,pipeline,inference,shared}.py``) is written out with the
snippets' text, installed as its console script ``crashed`` and run with the documented
commands. The files the README only describes (``pipeline.py``, ``inference.py``,
``shared.py``) are written here as it describes them: ops that build training and test data
and train the model, a ``predict_alcohol`` function, the model's container. The data is
generated (the original read BigQuery) and the model is scikit-learn's (xgboost is not a
dependency here).

Counts (18 fenced snippets in the document):

- snippets total: 18
- run with imports changed only (the import is already ``from hypermodel import hml``): 13 --
  the pipeline twice, ``setup.py``, registering the model, ``@hml.deploy_op``,
  ``@hml.inference``, ``@hml.deploy_inference`` and the commands ``pipelines P run OP``,
  ``run-all``, ``deploy-dev``, ``deploy-prod``, ``inference run-dev``, ``inference run-prod``
  (``deploy-dev``/``deploy-prod`` reach a local server that answers the Kubeflow Pipelines
  API instead of a real Kubeflow; the servers listen on a free port instead of 8000)
- need more than imports: 3 -- ``start.py`` (it uses ``os`` without importing it, and its last
  two lines are indented by two spaces inside a four-space block: ``import os`` added and the
  indentation fixed); ``inference deploy`` (run as written against a local kube-apiserver,
  whose namespace ``kubeflow`` is created first, and with ``--dry-run``, added here, which
  prints the manifests); ``pip install -e .`` of hypermodel (``make venv`` runs it; this file
  checks what it installed, as reinstalling would change the shared environment)
- cannot run: 2 -- the two conda set-ups (``conda create``/``conda install``/``activate``):
  no conda here, and this project installs with pip into ``.venv`` (``make venv``); the
  second also ends with a typo (``pip install -e ,``)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from hypermodel.models import ModelStore
from hypermodel.storage.local import LocalStorage
from tests.integration.fake_kfp import API, TOKEN, FakeKfp, kfp
from tests.integration.k8s_server import (
    Cluster,
    k8s_cluster,
    k8s_namespace,
)
from tests.seeds.conftest import install_console_script, sh
from tests.support import free_port, require_module, wait_for_port

__all__ = ["k8s_cluster", "k8s_namespace", "kfp"]  # fixtures used below, imported

IMAGE, COMMIT = "registry.example.org/growingdata/crashed", "0123456789abcdef"

# -- The walkthrough's project: demo_pkg/ ---------------------------------------------------------
SETUP_PY = """
from setuptools import setup, find_packages

NAME = "crashed"
VERSION = "0.0.80"
REQUIRES = [
    "click",
    "kfp",
    "xgboost",
    "pandas",
    "sklearn",
    "xgboost",
    "google-cloud",
    "google-cloud-bigquery",
    "hypermodel",
]

setup(
    name=NAME,
    version=VERSION,
    install_requires=REQUIRES,
    packages=find_packages(),
    python_requires=">=3.5.3",
    include_package_data=True,
    entry_points={"console_scripts": ["crashed = crashed.start:main"]},
)
"""

# start.py: the snippets of "start.py", "Define & Register...", "Define your Pipeline",
# "Configure Pipeline Operations", "Define your Inference API" and "Configure Inference API",
# in the order of the walkthrough, inside main() where "... Code from the rest of the
# walkthrough ..." stands
START_PY = '''
import logging
import os  # added: the snippet uses os.environ without importing os
from typing import Dict, List
from hypermodel import hml
from flask import request

# Import my local modules
from crashed import shared, pipeline, inference

def main():
    # Create a reference to our "App" object which maintains state
    # about both the Inference and Pipeline phases of the model
    app = hml.HmlApp(
        name="car-crashes",
        platform="GCP",
        image_url=os.environ["DOCKERHUB_IMAGE"] + ":" + os.environ["CI_COMMIT_SHA"],
        package_entrypoint="crashed",
        inference_port=8000,
        k8s_namespace="kubeflow")

    crashed_model = shared.crashed_model_container(app)
    app.register_model(shared.MODEL_NAME, crashed_model)

    @hml.pipeline(app.pipelines, cron="0 0 * * *", experiment="demos")
    def crashed_pipeline():
        """
        This is where we define the workflow for this pipeline purely
        with method invocations.
        """
        create_training_op = pipeline.create_training()
        create_test_op = pipeline.create_test()
        train_model_op = pipeline.train_model()

        # Set up the dependencies for this model
        (
            train_model_op
            .after(create_training_op)
            .after(create_test_op)
        )

    @hml.deploy_op(app.pipelines)
    def op_configurator(op):
        """
        Configure our Pipeline Operation Pods with the right secrets and
        environment variables so that it can work with our cloud
        provider's services
        """
        (op
            # Service account for authentication / authorisation
            .with_gcp_auth("svcacc-tez-kf")
            .with_env("GCP_PROJECT", "grwdt-dev")
            .with_env("GCP_ZONE", "australia-southeast1-a")
            .with_env("K8S_NAMESPACE", "kubeflow")
            .with_env("K8S_CLUSTER", "kf-crashed")
        )
        return op

    @hml.inference(app.inference)
    def crashed_inference(inference_app: hml.HmlInferenceApp):
        # Get a reference to the current version of my model
        model_container = inference_app.get_model(shared.MODEL_NAME)
        model_container.load()

        # Define our routes here, which can then call other functions with more
        # context
        @inference_app.flask.route("/predict", methods=["GET"])
        def predict():
            logging.info("api: /predict")

            feature_params = request.args.to_dict()
            return inference.predict_alcohol(inference_app, model_container, feature_params)

    @hml.deploy_inference(app.inference)
    def deploy_inference(deployment: hml.HmlInferenceDeployment):
        logging.info(f"Preparing deploying: {deployment.deployment_name} ({deployment.k8s_container.image} -> {deployment.k8s_container.args} )")

        (
            deployment
            .with_gcp_auth("svcacc-tez-kf")
            .with_empty_dir("tmp", "/temp")
            .with_empty_dir("artifacts", "/artifacts")
        )

    # ... Code from the rest of the walkthrough ...

    app.start()  # was indented by two spaces, inside a block indented by four
'''

# shared.py, pipeline.py, inference.py: what the README says each one does
SHARED_PY = '''
"""What training and inference share: the model's name, its features, the crash records."""
import random

from hypermodel import hml

MODEL_NAME = "crashed"
NUMERIC = ["speeding", "not_distracted", "ins_premium", "ins_losses"]
CATEGORICAL = ["region"]
TARGET = "alcohol"
REGIONS = ["north", "south", "east", "west"]


class Crash(hml.BaseData, id="crashId"):
    crashId: int
    region: str
    speeding: float
    not_distracted: float
    ins_premium: float
    ins_losses: float
    alcohol: float


def crashed_model_container(app=None):
    """The model's metadata: its numeric and categorical features and its target."""
    return hml.ModelContainer(
        MODEL_NAME, app=app, features_numeric=NUMERIC, features_categorical=CATEGORICAL,
        target=TARGET,
    )


def crashes(ids):
    """Generated crash statistics (the walkthrough read them from BigQuery)."""
    for i in ids:
        rng = random.Random(i)
        region = REGIONS[i % 4]
        speeding = rng.uniform(1.0, 10.0)
        not_distracted = rng.uniform(5.0, 20.0)
        alcohol = 0.5 * speeding + 0.1 * not_distracted + REGIONS.index(region) + rng.gauss(0, 0.05)
        yield Crash(crashId=i, region=region, speeding=speeding, not_distracted=not_distracted,
                    ins_premium=rng.uniform(600, 1200), ins_losses=rng.uniform(80, 200),
                    alcohol=alcohol)


def dataset(name):
    return hml.Dataset(dataType=Crash, project="crashed", branch="main", name=name, chunkCount=16)


def frame(name):
    import pandas as pd

    return pd.DataFrame([c.to_data() for c in sorted(dataset(name).open("r"), key=lambda c: c.crashId)])
'''

PIPELINE_PY = '''
"""The pipeline's operations: each one runs as `crashed pipelines crashed_pipeline run <op>`."""
from hypermodel import hml

from crashed import shared


def _write(name, ids):
    out = shared.dataset(name)
    with out.open("w") as writer:
        for crash in shared.crashes(ids):
            writer.append(crash)
    return {"dataset": out.ref, "rows": len(ids)}


@hml.op()
def create_training():
    """The training table."""
    return _write("training", range(0, 160))


@hml.op()
def create_test():
    """The test table."""
    return _write("test", range(160, 200))


@hml.op()
def train_model():
    """Fit the model, evaluate it and publish it as a ModelContainer."""
    from sklearn.linear_model import LinearRegression

    training, test = shared.frame("training"), shared.frame("test")
    container = shared.crashed_model_container()
    container.analyze_distributions(training)
    container.model = LinearRegression().fit(container.build_features(training), training[shared.TARGET])
    r2 = float(container.model.score(container.build_features(test), test[shared.TARGET]))
    container.add_training_dataset(shared.dataset("training"))
    reference = container.publish(metrics={"r2_test": r2})
    return {"version": reference.version, "r2_test": round(r2, 4)}
'''

INFERENCE_PY = '''
"""Inferences from feature values, without Flask or HyperModel in sight."""
from crashed import shared


def predict_alcohol(inference_app, model_container, feature_params):
    import pandas as pd

    missing = [f for f in shared.NUMERIC + shared.CATEGORICAL if f not in feature_params]
    if missing:
        return {"error": f"missing query parameters: {', '.join(missing)}"}, 400
    row = {f: float(feature_params[f]) for f in shared.NUMERIC}
    row.update({f: feature_params[f] for f in shared.CATEGORICAL})
    features = model_container.build_features(pd.DataFrame([row]))
    prediction = float(model_container.predict(features)[0])
    return {"alcohol": round(prediction, 4), "model": model_container.reference.long_name}
'''

QUERY = {"speeding": "4.0", "not_distracted": "10.0", "ins_premium": "800", "ins_losses": "120"}


def expected_alcohol(region: str) -> float:
    """What the generated data's rule gives (the linear model learns it almost exactly)."""
    return 0.5 * 4.0 + 0.1 * 10.0 + ["north", "south", "east", "west"].index(region)


@dataclass
class Crashed:
    """The installed walkthrough project: its console script and the environment it runs in."""

    script: Path
    env: dict[str, str]
    root: Path  # the app's bucket ($HML_ROOT), a local directory here
    work: Path

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return sh([str(self.script), *args], cwd=self.work, env=self.env, timeout=timeout)

    def store(self) -> ModelStore:
        return ModelStore(LocalStorage(self.root))


@contextlib.contextmanager
def imported(crashed: Crashed, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The project's modules imported in this process, with its environment; forgotten after."""
    for name, value in crashed.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(crashed.env["PYTHONPATH"])
    try:
        yield {
            name: importlib.import_module(name)
            for name in ("crashed.shared", "crashed.pipeline", "crashed.inference", "crashed.start")
        }
    finally:
        for name in [m for m in sys.modules if m == "crashed" or m.startswith("crashed.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Crashed:
    """demo_pkg/ written, installed (its setup.py's console script) and trained once."""
    base = tmp_path_factory.mktemp("hyper_model")
    package = base / "demo_pkg"
    (package / "crashed").mkdir(parents=True)
    for name, text in (("setup.py", SETUP_PY), ("crashed/__init__.py", ""),
                       ("crashed/start.py", START_PY), ("crashed/shared.py", SHARED_PY),
                       ("crashed/pipeline.py", PIPELINE_PY),
                       ("crashed/inference.py", INFERENCE_PY)):  # fmt: skip
        (package / name).write_text(textwrap.dedent(text).lstrip())
    (package / "Readme.md").write_text("# crashed\n")
    scripts = install_console_script(package, base / "installed")
    work = base / "work"
    work.mkdir()
    env = {
        "PYTHONPATH": str(package),
        "HML_ROOT": str(base / "bucket"),
        "HML_AUTHOR": "alice@example.org",
        "DOCKERHUB_IMAGE": IMAGE,
        "CI_COMMIT_SHA": COMMIT,
        "HOME": str(base / "home"),  # kfp.Client reads ~/.config/kfp
    }
    app = Crashed(scripts / "crashed", env, base / "bucket", work)
    # Run all steps in a Pipeline: <your_app> pipelines <your_pipeline_name> run-all
    trained = app("pipelines", "crashed_pipeline", "run-all")
    assert "train_model:" in trained.stdout, trained.stdout
    return app


# -- Getting started: installing ----------------------------------------------------------------------
def test_install_the_package_for_local_development() -> None:
    # $ cd src/hyper-model/ ; python -m pip install --upgrade setuptools wheel ; pip install -e .
    # `make venv` runs it for this checkout; what it installed:
    import hypermodel

    dist = metadata.distribution("hypermodel")
    assert Path(hypermodel.__file__).resolve().is_relative_to(Path(__file__).parents[2] / "src")
    assert "hml" in {e.name for e in dist.entry_points if e.group == "console_scripts"}
    assert (Path(sys.executable).parent / "hml").is_file()
    for module in ("flask", "waitress", "click", "joblib", "pandas", "sklearn"):
        require_module(module, "make venv (hypermodel's serve and dev extras)")


def test_setup_py_installs_the_console_script(crashed: Crashed) -> None:
    # entry_points={"console_scripts": ["crashed = crashed.start:main"]}
    text = crashed.script.read_text()
    assert text.startswith(f"#!{sys.executable}") and "crashed.start" in text
    shown = crashed("--help")
    assert "pipelines" in shown.stdout and "inference" in shown.stdout
    listed = crashed("pipelines", "--help")
    assert "crashed_pipeline" in listed.stdout


# -- The pipeline: run one step, run all ---------------------------------------------------------------
def test_execute_a_pipeline_step(crashed: Crashed) -> None:
    # $ <your_app> pipelines <your_pipeline_name> run <your_pipeline_step>
    out = crashed("pipelines", "crashed_pipeline", "run", "create_test")
    result = json.loads(out.stdout)  # the op's return value
    assert result["rows"] == 40 and result["dataset"].startswith("test@")
    version = result["dataset"].removeprefix("test@")
    recorded = json.loads(
        (crashed.root / f".hml-versions/crashed/main/test/{version}.json").read_text()
    )
    assert (recorded["task"], recorded["pipeline"]) == ("create_test", "crashed_pipeline")
    listed = sh([str(Path(sys.executable).parent / "hml"), "--root", str(crashed.root),
                 "datasets", "list"], cwd=crashed.work)  # fmt: skip
    (row,) = [line.split() for line in listed.stdout.splitlines() if "crashed/main/test " in line]
    assert row[1] == "Crash" and row[4] == version  # the newest version: this step's


def test_run_all_steps_in_a_pipeline(crashed: Crashed) -> None:
    # the fixture ran `crashed pipelines crashed_pipeline run-all`: three ops, train_model
    # after both tables, and the model published to the app's bucket
    store = crashed.store()
    (reference,) = store.versions("crashed")
    assert reference.metrics["r2_test"] > 0.99
    assert len(reference.datasets) == 1  # the training table's checksum: its lineage
    outputs = [{p.stem for p in (run / "outputs").glob("*.json")}
               for run in (crashed.root / "runs").iterdir()]  # fmt: skip
    assert {"create_training", "create_test", "train_model"} in outputs  # one run, three ops
    shown = crashed("pipelines", "crashed_pipeline", "show")
    assert "train_model" in shown.stdout and "create_training" in shown.stdout


# -- Deploy the pipeline to Kubeflow (a local server answering the KFP API) ------------------------------
def _kfp_env(crashed: Crashed, host: str) -> dict[str, str]:
    return {**crashed.env, "HML_KFP_HOST": host, "HML_KFP_TOKEN": TOKEN}


def test_deploy_dev(crashed: Crashed, kfp: FakeKfp, httpserver: Any) -> None:
    # $ <your_app> pipelines <your_pipeline_name> deploy-dev
    host = httpserver.url_for("").rstrip("/")
    out = sh([str(crashed.script), "pipelines", "crashed_pipeline", "deploy-dev"],
             cwd=crashed.work, env=_kfp_env(crashed, host))  # fmt: skip
    assert f"POST {API}/pipelines/upload" in kfp.calls() and f"POST {API}/runs" in kfp.calls()
    assert f"{host}/#/runs/details/" in out.stdout and TOKEN not in out.stdout + out.stderr
    (upload,) = kfp.uploads
    compiled, platform = yaml.safe_load_all(upload)  # the pipeline, then its Kubernetes settings
    containers = compiled["deploymentSpec"]["executors"]
    assert set(containers) == {f"exec-{op}" for op in ("create-training", "create-test",
                                                       "train-model")}  # fmt: skip
    train = containers["exec-train-model"]["container"]
    # each op runs the app's console script: crashed pipelines crashed_pipeline run train_model
    assert train["image"] == f"{IMAGE}:{COMMIT}" and train["command"] == ["crashed"]
    assert train["args"][:4] == ["pipelines", "crashed_pipeline", "run", "train_model"]
    env = {e["name"]: e["value"] for e in train["env"]}
    # @hml.deploy_op: every op pod gets the env vars and the GCP service account's key
    assert env["GCP_PROJECT"] == "grwdt-dev" and env["K8S_CLUSTER"] == "kf-crashed"
    assert env["GOOGLE_APPLICATION_CREDENTIALS"].startswith(
        "/secret/gcp-credentials/svcacc-tez-kf/"
    )
    secrets = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert {s["secretName"] for e in secrets.values() for s in e["secretAsVolume"]} == {
        "svcacc-tez-kf"
    }
    dag = compiled["root"]["dag"]["tasks"]
    assert set(dag["train-model"]["dependentTasks"]) == {"create-training", "create-test"}
    assert "dependentTasks" not in dag["create-training"]
    (experiment,) = kfp.experiments.values()
    assert experiment["display_name"] == "demos-dev"  # the pipeline's experiment, for dev runs


def test_deploy_prod(crashed: Crashed, kfp: FakeKfp, httpserver: Any) -> None:
    # $ <your_app> pipelines <your_pipeline_name> deploy-prod
    host = httpserver.url_for("").rstrip("/")
    out = sh([str(crashed.script), "pipelines", "crashed_pipeline", "deploy-prod"],
             cwd=crashed.work, env=_kfp_env(crashed, host))  # fmt: skip
    assert "recurring run recurring-" in out.stdout
    (experiment,) = kfp.experiments.values()
    assert experiment["display_name"] == "demos"  # @hml.pipeline(experiment="demos")
    (schedule,) = kfp.recurring.values()
    # cron="0 0 * * *" (5 fields) becomes Kubeflow's 6 (seconds first), said in a note
    assert schedule["trigger"] == {"cron_schedule": {"cron": "0 0 0 * * *"}}
    assert int(schedule["max_concurrency"]) == 1
    assert "five fields" in out.stdout + out.stderr


# -- Serve inference requests ------------------------------------------------------------------------------
@pytest.fixture
def server(crashed: Crashed) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(
        *args: str, env: dict[str, str] | None = None, script: list[str] | None = None
    ) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [*(script or [str(crashed.script)]), *args, "--port", str(port)],
            cwd=crashed.work, env={**os.environ, **crashed.env, **(env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # run-dev's reloader runs the server in a child process
        )  # fmt: skip
        started.append(proc)
        wait_for_port(port, proc, timeout=90)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        status, answer = 0, None
        while time.monotonic() < deadline:  # the reloader's child may still be loading
            try:
                status, _, answer = get(f"{url}/readyz")
            except (urllib.error.URLError, ConnectionError):
                pass
            if status == 200:
                return url
            time.sleep(0.2)
        raise TimeoutError(f"{url}/readyz never answered 200; last: {status} {answer}")

    yield start
    for proc in started:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def check_predictions(url: str, crashed: Crashed) -> None:
    (reference,) = crashed.store().versions("crashed")
    for region in ("north", "west"):
        query = "&".join(f"{k}={v}" for k, v in {**QUERY, "region": region}.items())
        status, headers, body = get(f"{url}/predict?{query}")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert body["alcohol"] == pytest.approx(expected_alcohol(region), abs=0.05)
        assert body["model"] == reference.long_name
    status, _, body = get(f"{url}/predict?speeding=4")
    assert status == 400 and "not_distracted" in body["error"]


def test_serve_inference_requests_dev(crashed: Crashed, server: Any) -> None:
    # $ <your_app> inference run-dev
    url = server("inference", "run-dev")
    check_predictions(url, crashed)


def test_serve_inference_requests_prod(crashed: Crashed, server: Any) -> None:
    # $ <your_app> inference run-prod   (waitress)
    url = server("inference", "run-prod", "--host", "127.0.0.1")
    check_predictions(url, crashed)
    status, _, index = get(url)
    assert status == 200 and "crashed" in json.dumps(index)


# -- Deploy the inference application -------------------------------------------------------------------
def test_deploy_the_inference_application_dry_run(
    crashed: Crashed,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # $ <your_app> inference deploy --dry-run   (--dry-run added: print the manifests, send nothing)
    # run in this process (main() is what the console script calls) to see the snippet's log
    with imported(crashed, monkeypatch) as modules, caplog.at_level(logging.INFO):
        monkeypatch.setattr(sys, "argv", ["crashed", "inference", "deploy", "--dry-run"])
        with pytest.raises(SystemExit) as exited:
            modules["crashed.start"].main()
    assert exited.value.code in (0, None)
    kinds = {d["kind"]: d for d in yaml.safe_load_all(capsys.readouterr().out) if d}
    deployment = kinds["Deployment"]
    assert deployment["metadata"]["namespace"] == "kubeflow"  # HmlApp(k8s_namespace=...)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{IMAGE}:{COMMIT}"
    assert container["args"][:2] == ["inference", "run-prod"]
    # @hml.deploy_inference: the service account's key and the two scratch volumes
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tmp"] == "/temp" and mounts["artifacts"] == "/artifacts"
    assert any(v.get("secret", {}).get("secretName") == "svcacc-tez-kf" for v in pod["volumes"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GOOGLE_APPLICATION_CREDENTIALS"].startswith(
        "/secret/gcp-credentials/svcacc-tez-kf/"
    )
    assert kinds["Service"]["spec"]["ports"][0]["port"] == 8000  # inference_port
    # the snippet's log line: deployment_name, k8s_container.image and .args
    (line,) = [r.getMessage() for r in caplog.records if "Preparing deploying" in r.getMessage()]
    name = deployment["metadata"]["name"]
    assert line.startswith(f"Preparing deploying: {name} ({IMAGE}:{COMMIT} -> ['inference', ")


def test_deploy_the_inference_application(
    crashed: Crashed,
    k8s_cluster: Cluster,
    k8s_namespace: str,
) -> None:
    # $ <your_app> inference deploy   (against a local kube-apiserver named by $KUBECONFIG, in a
    # fresh namespace instead of the app's "kubeflow": --namespace added)
    env = {**crashed.env, "KUBECONFIG": str(k8s_cluster.kubeconfig)}
    sh([str(crashed.script), "inference", "deploy", "--namespace", k8s_namespace],
       cwd=crashed.work, env=env)  # fmt: skip
    listed = k8s_cluster.get(f"/apis/apps/v1/namespaces/{k8s_namespace}/deployments")
    (deployment,) = listed["items"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{IMAGE}:{COMMIT}"
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/temp", "/artifacts"}
    name = deployment["metadata"]["name"]
    service = k8s_cluster.get(f"/api/v1/namespaces/{k8s_namespace}/services/{name}")
    assert service is not None and service["spec"]["ports"][0]["port"] == 8000
    # run again: the same objects, updated in place
    sh([str(crashed.script), "inference", "deploy", "--namespace", k8s_namespace],
       cwd=crashed.work, env=env)  # fmt: skip
    again = k8s_cluster.get(f"/apis/apps/v1/namespaces/{k8s_namespace}/deployments")
    assert [d["metadata"]["name"] for d in again["items"]] == [name]


# -- The model: loaded by its alias ----------------------------------------------------------------------
def test_model_loaded_by_alias(
    crashed: Crashed, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ModelContainer.load() reads the latest version; a version can be promoted to an alias
    # ("production") in the model store and loaded, or served, by that alias
    copy = crashed.root.parent / "bucket-alias"  # the module's bucket keeps one version
    shutil.copytree(crashed.root, copy)
    crashed = Crashed(crashed.script, {**crashed.env, "HML_ROOT": str(copy)}, copy, crashed.work)
    store = crashed.store()
    (first,) = store.versions("crashed")
    crashed("pipelines", "crashed_pipeline", "run", "train_model", "--no-cache")
    assert len(store.versions("crashed")) == 2
    store.set_alias("crashed", "production", first.version, reason="the first model")
    assert store.resolve("crashed", "production").version == first.version
    assert store.resolve("crashed", "latest").version != first.version

    with imported(crashed, monkeypatch) as modules:
        shared = modules["crashed.shared"]
        container = shared.crashed_model_container().load("production", LocalStorage(copy))
    assert container.reference is not None and container.reference.version == first.version
    assert container.distributions["categorical"]["region"] == ["east", "north", "south", "west"]

    # the walkthrough's app loads by hand with model_container.load() (latest): `--model
    # NAME=REF` replaces what it loads, as it does for inference_app.load_model
    query = "&".join(f"{k}={v}" for k, v in {**QUERY, "region": "east"}.items())
    url = server("inference", "run-prod", "--host", "127.0.0.1", "--model", "crashed=production",
                 env={"HML_ROOT": str(copy)})  # fmt: skip
    status, headers, _ = get(f"{url}/predict?{query}")
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}["x-model-version"] == first.version

    # an app that loads its model with inference_app.load_model(..., "production") serves the
    # version the alias names, and follows the alias when it moves
    (crashed.work / "alias_app.py").write_text(ALIAS_APP)
    url = server("inference", "run-prod", "--host", "127.0.0.1", "--model-poll-seconds", "0.5",
                 env={"HML_ROOT": str(copy)},
                 script=[sys.executable, str(crashed.work / "alias_app.py")])  # fmt: skip
    status, _, body = get(f"{url}/predict?{query}")
    assert status == 200 and body["model"] == first.long_name
    newest = store.resolve("crashed", "latest")
    store.set_alias("crashed", "production", newest.version, expected=first.version)
    deadline = time.monotonic() + 60
    while body["model"] != newest.long_name and time.monotonic() < deadline:
        time.sleep(0.3)
        body = get(f"{url}/predict?{query}")[2]
    assert body["model"] == newest.long_name


ALIAS_APP = """
import os

from flask import request

from crashed import inference, shared
from hypermodel import hml

app = hml.HmlApp(name="car-crashes", image_url=os.environ["DOCKERHUB_IMAGE"],
                 package_entrypoint="crashed", inference_port=8000, k8s_namespace="kubeflow")


@hml.inference(app.inference)
def crashed_inference(inference_app):
    inference_app.load_model(shared.crashed_model_container(app), "production")

    @inference_app.flask.route("/predict", methods=["GET"])
    def predict():
        model_container = inference_app.get_model(shared.MODEL_NAME)  # follows the alias
        return inference.predict_alcohol(inference_app, model_container, request.args.to_dict())


app.start()
"""
