"""Execute a compiled KFP v2 YAML locally, the way Kubeflow's launcher would.

Reads only the YAML (not the hypermodel pipeline): for each task in dependency order it takes
the executor's command, args and env, substitutes the placeholders (pipeline inputs, constants,
upstream output files, run and task ids) and runs the command as a subprocess. A task whose
component is itself a DAG runs that DAG's tasks; with a ``parameterIterator`` (a
``dsl.ParallelFor``) once per item, the item bound to the loop's input, one pod per item and
task. Used by the parity tests to check that compiled pipelines and `run-all` agree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")
_OUTPUT_FILE = re.compile(r"\{\{\$\.outputs\.parameters\['([^']+)'\]\.output_file\}\}")


@dataclass
class Replayed:
    """What the replay ran, by task: a root task by its name, a task of a sub-DAG by its path
    (``for-loop-2[3]/join-chunk``: the loop task, the item's index, the inner task)."""

    outputs: dict[str, Any] = field(default_factory=dict)  # task -> parsed output value
    commands: dict[str, list[str]] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)  # the container tasks, in the order they ran


def load(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    platform = docs[1]["platforms"]["kubernetes"] if len(docs) > 1 else {}
    return docs[0], platform


def render(value: Any, ptype: str) -> str:
    """How the launcher turns a typed parameter value into command-line text."""
    if ptype == "STRING":
        return str(value)
    if ptype == "NUMBER_INTEGER":
        return str(int(value))
    if ptype == "NUMBER_DOUBLE":
        return repr(float(value))
    if ptype == "BOOLEAN":
        return "true" if value else "false"
    return json.dumps(value)


def parse_output(text: str, ptype: str) -> Any:
    """How the launcher reads an output parameter file."""
    if ptype == "STRING":
        return text
    value = json.loads(text)
    if ptype == "NUMBER_INTEGER":
        return int(value)
    if ptype == "NUMBER_DOUBLE":
        return float(value)
    return value


def order(tasks: dict[str, Any]) -> list[str]:
    done: list[str] = []
    while len(done) < len(tasks):
        ready = [
            n
            for n, t in tasks.items()
            if n not in done and all(d in done for d in t.get("dependentTasks", []))
        ]
        assert ready, "dependency cycle in compiled YAML"
        done += sorted(ready)
    return done


def parameters(definitions: dict[str, Any]) -> dict[str, str]:
    """Parameter name -> type, of a component's input or output definitions."""
    return {n: d["parameterType"] for n, d in definitions.get("parameters", {}).items()}


def loop_items(task: dict[str, Any], inputs: dict[str, Any]) -> list[Any]:
    """The items of a ParallelFor: a constant list, or a list the loop task is given."""
    iterator = task["parameterIterator"]
    items = iterator["items"]
    if "raw" in items:
        value = json.loads(items["raw"]) if isinstance(items["raw"], str) else items["raw"]
    else:
        value = inputs[items["inputParameter"]]
        value = json.loads(value) if isinstance(value, str) else value
    assert isinstance(value, list), f"ParallelFor items are not a list: {value!r}"
    return value


@dataclass
class _Launcher:
    spec: dict[str, Any]
    workdir: Path
    run_id: str
    extra_env: dict[str, str]
    entrypoint: list[str] | None
    timeout: float
    cwd: Path | None
    on_done: Callable[[str], None] | None
    result: Replayed = field(default_factory=Replayed)

    def dag(self, tasks: dict[str, Any], inputs: dict[str, Any], prefix: str = "") -> None:
        """Run a DAG's tasks in dependency order; ``inputs`` are the DAG's own inputs."""
        outputs: dict[str, Any] = {}  # this DAG's tasks -> their output
        for name in order(tasks):
            task = tasks[name]
            assert "triggerPolicy" not in task, f"task {name}: conditions are not replayed"
            component = self.spec["components"][task["componentRef"]["name"]]
            values: dict[str, Any] = {}
            for pname, source in task.get("inputs", {}).get("parameters", {}).items():
                if "componentInputParameter" in source:
                    values[pname] = inputs[source["componentInputParameter"]]
                elif "taskOutputParameter" in source:
                    producer = source["taskOutputParameter"]["producerTask"]
                    assert producer in outputs, f"task {name}: {producer} has no output here"
                    values[pname] = outputs[producer]
                else:
                    values[pname] = source["runtimeValue"]["constant"]
            if "dag" not in component:
                outputs[name] = self.container(prefix + name, component, values)
            elif "parameterIterator" in task:
                item_input = task["parameterIterator"]["itemInput"]
                for index, item in enumerate(loop_items(task, values)):
                    self.dag(
                        component["dag"]["tasks"],
                        {**values, item_input: item},
                        f"{prefix}{name}[{index}]/",
                    )
            else:
                self.dag(component["dag"]["tasks"], values, f"{prefix}{name}/")

    def container(self, path: str, component: dict[str, Any], values: dict[str, Any]) -> Any:
        """Run one pod: the executor's command with its placeholders replaced."""
        input_types = parameters(component.get("inputDefinitions", {}))
        output_types = parameters(component.get("outputDefinitions", {}))
        file_name = re.sub(r"[^\w.-]", "_", path)
        out_files = {o: self.workdir / f"{file_name}.{o}.out" for o in output_types}

        def substitute(arg: str) -> str:
            arg = _INPUT.sub(lambda m: render(values[m.group(1)], input_types[m.group(1)]), arg)
            arg = _OUTPUT_FILE.sub(lambda m: str(out_files[m.group(1)]), arg)
            return arg.replace("{{$.pipeline_job_uuid}}", self.run_id).replace(
                "{{$.pipeline_task_uuid}}", f"task-{file_name}"
            )

        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]
        container = executor["container"]
        command = [substitute(a) for a in container.get("command", []) + container.get("args", [])]
        if self.entrypoint:
            command = self.entrypoint + command[1:]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        self.result.commands[path], self.result.envs[path] = command, dict(env)
        env.setdefault("HML_WORKDIR", str(self.workdir / "hml-work"))
        if env["HML_WORKDIR"].startswith("/hml-work"):  # the pod's emptyDir, here a local folder
            env["HML_WORKDIR"] = str(self.workdir / "hml-work")
        proc = subprocess.run(
            command,
            env={**os.environ, **env, **self.extra_env},
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
            cwd=self.cwd,
        )
        assert proc.returncode == 0, (
            f"task {path} failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr}"
        )
        self.result.ran.append(path)
        output = None
        for oname, ofile in out_files.items():
            output = self.result.outputs[path] = parse_output(
                ofile.read_text(), output_types[oname]
            )
        if self.on_done is not None:
            self.on_done(path)
        return output


def replay(
    path: Path,
    workdir: Path,
    *,
    params: dict[str, Any] | None = None,
    run_id: str = "kfp-run-1",
    extra_env: dict[str, str] | None = None,
    entrypoint: list[str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    on_done: Callable[[str], None] | None = None,
) -> Replayed:
    """Run the compiled pipeline at ``path``; ``on_done(task)`` is called after each pod."""
    spec, _platform = load(path)
    root = spec["root"]
    pipeline_inputs = {
        n: d.get("defaultValue")
        for n, d in root.get("inputDefinitions", {}).get("parameters", {}).items()
    }
    pipeline_inputs.update(params or {})
    launcher = _Launcher(
        spec, workdir, run_id, dict(extra_env or {}), entrypoint, timeout, cwd, on_done
    )
    launcher.dag(root["dag"]["tasks"], pipeline_inputs)
    return launcher.result
