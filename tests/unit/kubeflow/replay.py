"""Execute a compiled KFP v2 YAML locally, the way Kubeflow's launcher would.

Reads only the YAML (not the hypermodel pipeline): for each task in dependency order it takes
the executor's command, args and env, substitutes the placeholders (pipeline inputs, constants,
upstream output files, run and task ids) and runs the command as a subprocess. Used by the
parity test to check that compiled pipelines and `run-all` agree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")
_OUTPUT_FILE = re.compile(r"\{\{\$\.outputs\.parameters\['([^']+)'\]\.output_file\}\}")


@dataclass
class Replayed:
    outputs: dict[str, Any] = field(default_factory=dict)  # task -> parsed output value
    commands: dict[str, list[str]] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)


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
) -> Replayed:
    spec, _platform = load(path)
    root = spec["root"]
    pipeline_inputs = {
        n: d.get("defaultValue")
        for n, d in root.get("inputDefinitions", {}).get("parameters", {}).items()
    }
    pipeline_inputs.update(params or {})
    tasks = root["dag"]["tasks"]
    result = Replayed()
    for name in order(tasks):
        task = tasks[name]
        component = spec["components"][task["componentRef"]["name"]]
        input_types = {
            n: d["parameterType"]
            for n, d in component.get("inputDefinitions", {}).get("parameters", {}).items()
        }
        output_types = {
            n: d["parameterType"]
            for n, d in component.get("outputDefinitions", {}).get("parameters", {}).items()
        }
        values: dict[str, Any] = {}
        for pname, source in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in source:
                values[pname] = pipeline_inputs[source["componentInputParameter"]]
            elif "taskOutputParameter" in source:
                values[pname] = result.outputs[source["taskOutputParameter"]["producerTask"]]
            else:
                values[pname] = source["runtimeValue"]["constant"]
        out_files = {o: workdir / f"{name}.{o}.out" for o in output_types}

        def substitute(
            arg: str,
            values: dict[str, Any] = values,
            out_files: dict[str, Path] = out_files,
            input_types: dict[str, str] = input_types,
            name: str = name,
        ) -> str:
            arg = _INPUT.sub(lambda m: render(values[m.group(1)], input_types[m.group(1)]), arg)
            arg = _OUTPUT_FILE.sub(lambda m: str(out_files[m.group(1)]), arg)
            return arg.replace("{{$.pipeline_job_uuid}}", run_id).replace(
                "{{$.pipeline_task_uuid}}", f"task-{name}"
            )

        container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        command = [substitute(a) for a in container.get("command", []) + container.get("args", [])]
        if entrypoint:
            command = entrypoint + command[1:]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        result.commands[name], result.envs[name] = command, dict(env)
        env.setdefault("HML_WORKDIR", str(workdir / "hml-work"))
        if env["HML_WORKDIR"].startswith("/hml-work"):  # the pod's emptyDir, here a local folder
            env["HML_WORKDIR"] = str(workdir / "hml-work")
        full_env = {**os.environ, **env, **(extra_env or {})}
        proc = subprocess.run(
            command,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
        )
        assert proc.returncode == 0, (
            f"task {name} failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr}"
        )
        for oname, ofile in out_files.items():
            result.outputs[name] = parse_output(ofile.read_text(), output_types[oname])
    return result
