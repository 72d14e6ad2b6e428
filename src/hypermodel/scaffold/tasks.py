"""Generators of tasks and pipelines.

Generated stubs run as they are (a source yields ten objects, one-to-one/one-to-many tasks
carry each input's id to their output) so a new pipeline's run-all passes before any TODO is
filled in. What a class or task looks like is read from its source file (``ast``), never by
importing the project.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from ..names import snake_case
from .fields import SCALARS, ScaffoldError, check_class_name, module_name
from .project import Plan, ProjectLayout, require_models, require_modules
from .render import render

KINDS = {"source": "Source", "one_to_one": "OneToOne", "one_to_many": "OneToMany"}
# names a generated pipeline module uses itself: a task or pipeline variable of the same name
# would shadow them (and the app would fail at import)
_PIPELINE_NAMES = frozenset({"tasks", "datasets", "declare", "hml", "app", "data", "any"})


def check_not_a_data_model(layout: ProjectLayout, name: str, what: str) -> None:
    """A task/model class named like a data model class would shadow it where both are imported."""
    if layout.has_module("data_models", module_name(name)):
        raise ScaffoldError(
            f"{what} {name} has the name of the data model class {name}: both are imported "
            f"together, so one would hide the other; choose another name (e.g. Make{name})"
        )


def _check_pipeline_name(name: str, what: str) -> None:
    if snake_case(name) in _PIPELINE_NAMES:
        raise ScaffoldError(
            f"{what} {name} would be named {snake_case(name)!r}, a name the generated pipeline "
            f"uses itself ({', '.join(sorted(_PIPELINE_NAMES))}): choose another name"
        )


@dataclass
class ModelInfo:
    """What a data model declares: its fields (name -> annotation text) and id fields."""

    name: str
    fields: dict[str, str]
    ids: list[str]


def read_model(layout: ProjectLayout, class_name: str) -> ModelInfo:
    path = layout.subpackage("data_models") / f"{module_name(class_name)}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            fields = {
                item.target.id: ast.unparse(item.annotation)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            }
            ids: list[str] = []
            for kw in node.keywords:
                if kw.arg == "id":
                    value = ast.literal_eval(kw.value)
                    ids = [value] if isinstance(value, str) else list(value)
            return ModelInfo(class_name, fields, ids)
    raise ScaffoldError(f"{path} does not define class {class_name}")


def _example(annotation: str, owner: str) -> str:
    """Example value source for one annotation (for generated stubs)."""
    if annotation in SCALARS:
        return SCALARS[annotation][2]
    if annotation.startswith(("list[", "List[")):
        return "[]"
    if annotation == owner:
        return "None"
    return f"sample({annotation})"


def construct(
    model: ModelInfo, id_values: dict[str, str], indent: str = "        "
) -> tuple[str, set[str]]:
    """``Cls(field=value, ...)`` source and the names it needs (temporal types, sampled classes)."""
    needs: set[str] = set()
    parts = []
    for field, annotation in model.fields.items():
        value = id_values.get(field) or _example(annotation, model.name)
        if annotation in SCALARS and SCALARS[annotation][1]:
            needs.add(annotation)
        if value.startswith("sample("):
            needs.add("sample")
            needs.add(annotation)
        parts.append(f"{indent}    {field}={value},")
    if not parts:
        return f"{model.name}()", needs
    return f"{model.name}(\n" + "\n".join(parts) + f"\n{indent})", needs


def carried_ids(output: ModelInfo, source: ModelInfo | None, var: str) -> dict[str, str]:
    """The output's id fields set from the input's, position by position (same chunk)."""
    if source is None:
        return {}
    values = {}
    for out_id, in_id in zip(output.ids, source.ids, strict=False):
        expr = f"{var}.{in_id}"
        out_type, in_type = output.fields.get(out_id), source.fields.get(in_id)
        if out_type == "str" and in_type != "str":
            expr = f"str({expr})"
        elif out_type != in_type:
            continue  # no safe conversion: the example value stays, with the TODO
        values[out_id] = expr
    return values


def _imports(
    layout: ProjectLayout, classes: set[str], needs: set[str], stdlib: tuple[str, ...] = ()
) -> str:
    temporal = sorted(n for n in needs if n in SCALARS and SCALARS[n][1])
    lines = list(stdlib)
    if temporal:
        lines.append(f"from datetime import {', '.join(temporal)}")
    lines += [""] if lines else []
    lines.append("from hypermodel import hml")
    if "sample" in needs:
        lines.append("from hypermodel.scaffold.samples import sample")
    lines.append("")
    lines += [
        f"from {layout.package}.data_models.{module_name(c)} import {c}" for c in sorted(classes)
    ]
    return "\n" + "\n".join(lines) + "\n"


# -- tasks ----------------------------------------------------------------------------------------
def task_plan(
    layout: ProjectLayout, name: str, output_class: str, kind: str, inputs: list[str]
) -> Plan:
    """``tasks/<module>.py`` (a stub that runs) and ``tests/test_<module>.py``."""
    check_class_name(name, "task")
    check_class_name(output_class, "output class")
    if kind not in KINDS:
        raise ScaffoldError(f"task kind {kind!r} is not one of {', '.join(KINDS)}")
    for cls in inputs:
        check_class_name(cls, "input class")
    if kind == "source" and inputs:
        raise ScaffoldError("a --source task has no input datasets: drop --input")
    if kind != "source" and not inputs:
        inputs = [output_class]  # the common case: a transformation of the same class
    require_models(layout, sorted({output_class, *inputs}), f"task {name}")
    check_not_a_data_model(layout, name, "task")
    _check_pipeline_name(name, "task")
    output = read_model(layout, output_class)
    _check_joinable(layout, name, inputs)
    module = module_name(name)
    plan = Plan(layout.root)
    plan.add_package(layout.subpackage("tasks"), "Tasks over datasets.")
    plan.add(
        layout.subpackage("tasks") / f"{module}.py",
        _task_source(layout, name, kind, output, inputs),
    )
    plan.add(
        layout.tests_dir / f"test_{module}.py", _task_test(layout, name, module, output, inputs)
    )
    return plan


def _check_joinable(layout: ProjectLayout, task: str, inputs: list[str]) -> None:
    """Inputs are joined by id: their id fields must be able to hold equal values."""
    models = [read_model(layout, cls) for cls in inputs]
    for model in models:
        if not model.ids:
            raise ScaffoldError(
                f"task {task}: input class {model.name} has no id field, so it cannot be stored "
                "in a dataset; mark one with :id (e.g. `hml new data-model ... key:int:id`)"
            )
    kinds = {m.name: [m.fields.get(i) for i in m.ids] for m in models}
    if len({tuple(k) for k in kinds.values()}) > 1:
        described = ", ".join(f"{n} ({', '.join(map(str, k))})" for n, k in kinds.items())
        raise ScaffoldError(
            f"task {task} joins its inputs by id, but their id types differ: {described}; "
            "inputs of one task need ids of the same types"
        )


def _arg_names(inputs: list[str]) -> list[str]:
    names: list[str] = []
    for cls in inputs:
        base = cls[0].lower() + cls[1:]
        names.append(base if base not in names else f"{base}{len(names) + 1}")
    return names


def _task_source(
    layout: ProjectLayout, name: str, kind: str, output: ModelInfo, inputs: list[str]
) -> str:
    if kind == "source":
        ids = {i: ("item" if output.fields[i] == "int" else "str(item)") for i in output.ids[:1]}
        body, needs = construct(output, ids)
        return render(
            "task_source.py",
            name=name,
            output=output.name,
            imports=_imports(
                layout, {output.name}, needs, ("from collections.abc import Iterator",)
            ),
            construct=body,
        )
    args = _arg_names(inputs)
    first = read_model(layout, inputs[0])
    indent = "        " if kind == "one_to_one" else "            "
    body, needs = construct(output, carried_ids(output, first, args[0]), indent)
    run_args = ", ".join(f"{a}: {c}" for a, c in zip(args, inputs, strict=True))
    return render(
        f"task_{kind}.py",
        name=name,
        output=output.name,
        inputs_text=", ".join(dict.fromkeys(inputs)),
        imports=_imports(layout, {output.name, *inputs}, needs),
        run_args=run_args,
        construct=body,
    )


def _task_test(
    layout: ProjectLayout, name: str, module: str, output: ModelInfo, inputs: list[str]
) -> str:
    setup = []
    for k, cls in enumerate(inputs):
        setup += [
            f'    input{k} = hml.Dataset({cls}, location=str(tmp_path), name="input{k}")',
            f'    with input{k}.open("w") as writer:',
            f"        writer.append(sample({cls}))",
        ]
    task_args = (
        "inputDatasets=[" + ", ".join(f"input{k}" for k in range(len(inputs))) + "], "
        if inputs
        else ""
    )
    lines = [
        f"from {layout.package}.data_models.{module_name(c)} import {c}"
        for c in sorted({output.name, *inputs})
    ]
    lines.append(f"from {layout.package}.tasks.{module} import {name}")
    return render(
        "task_test.py",
        name=name,
        module=module,
        output=output.name,
        output_name="output",
        sample_import="from hypermodel.scaffold.samples import sample\n" if inputs else "",
        imports="\n".join(lines) + "\n",
        inputs_setup="\n".join(setup) + "\n" if setup else "",
        task_args=task_args,
    )


# -- pipelines ------------------------------------------------------------------------------------
@dataclass
class TaskInfo:
    name: str
    kind: str  # Source | OneToOne | OneToMany
    inputs: list[str]
    output: str


def read_task(layout: ProjectLayout, name: str) -> TaskInfo:
    """A task's kind, input classes (run()'s annotations) and output class."""
    path = layout.subpackage("tasks") / f"{module_name(name)}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        raise ScaffoldError(f"{path} does not define class {name}")
    kind = next(
        (
            ast.unparse(b).split(".")[-1]
            for b in cls.bases
            if ast.unparse(b).split(".")[-1] in KINDS.values()
        ),
        None,
    )
    run = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "run"), None)
    if kind is None or run is None:
        raise ScaffoldError(
            f"cannot tell what task {name} reads and writes from {path} (it needs a class "
            "derived from hml.Source, hml.OneToOne or hml.OneToMany with a run() method)"
        )
    inputs = [ast.unparse(a.annotation) for a in run.args.args[1:] if a.annotation is not None]
    output = _output_class(run, kind)
    if output is None or (kind != "Source" and not inputs):
        raise ScaffoldError(
            f"cannot tell the input/output classes of task {name} from {path}: annotate run()'s "
            "arguments with the input classes and its return (one-to-many: its "
            "self.output.append(Class(...)) call)"
        )
    return TaskInfo(name, kind, [] if kind == "Source" else inputs, output)


def _output_class(run: ast.FunctionDef, kind: str) -> str | None:
    if kind != "OneToMany":
        return ast.unparse(run.returns) if run.returns is not None else None
    for node in ast.walk(run):
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "self.output.append"
            and node.args
            and isinstance(node.args[0], ast.Call)
        ):
            return ast.unparse(node.args[0].func)
    return None


def pipeline_plan(layout: ProjectLayout, name: str, parts: list[str]) -> Plan:
    """``pipelines/<module>.py`` (tasks wired through datasets) and its end-to-end test."""
    check_class_name(name, "pipeline")
    for part in parts:
        check_class_name(part, "task or class")
    task_names = [p for p in parts if layout.has_module("tasks", module_name(p))]
    classes = [p for p in parts if p not in task_names]
    require_models(layout, classes, f"pipeline {name} (arguments that are not tasks)")
    if not task_names:
        raise ScaffoldError(
            f"pipeline {name} names no task of {layout.subpackage('tasks')}: create tasks first "
            "with `hml new task NAME OutputClass ...`"
        )
    require_modules(layout, "tasks", task_names, "tasks")
    repeated = sorted({t for t in task_names if task_names.count(t) > 1})
    if repeated:
        raise ScaffoldError(
            f"pipeline {name} names task(s) {', '.join(repeated)} twice: a task runs once per "
            "pipeline (make a second task class for a second pass)"
        )
    _check_pipeline_name(name, "pipeline")
    for task_name in task_names:
        _check_pipeline_name(task_name, "task")
        check_not_a_data_model(layout, task_name, "task")
    tasks = [read_task(layout, t) for t in task_names]
    pipeline = snake_case(name)
    if pipeline in {module_name(t) for t in task_names}:
        raise ScaffoldError(
            f"pipeline {name} would have the name of its task {pipeline}: choose another name"
        )
    plan = Plan(layout.root)
    source, written = _pipeline_source(layout, pipeline, tasks, classes)
    plan.add(layout.subpackage("pipelines") / f"{pipeline}.py", source)
    plan.add(
        layout.tests_dir / f"test_pipeline_{pipeline}.py",
        render(
            "pipeline_test.py",
            pipeline=pipeline,
            package=layout.package,
            written="[\n"
            + "".join(f"        {pair!r},\n".replace("'", '"') for pair in written)
            + "    ]",
        ),
    )
    return plan


def plural(class_name: str) -> str:
    snake = module_name(class_name)
    if snake.endswith(("s", "x", "ch", "sh")):
        return f"{snake}es"
    if snake.endswith("y") and snake[-2:-1] not in ("a", "e", "o", "u"):
        return f"{snake[:-1]}ies"
    return f"{snake}s"


def _pipeline_source(
    layout: ProjectLayout, pipeline: str, tasks: list[TaskInfo], classes: list[str]
) -> tuple[str, list[tuple[str, str]]]:
    datasets: dict[str, str] = {}  # dataset name -> class
    latest: dict[str, str] = {}  # class -> the dataset most recently written with it
    for cls in classes:  # classes named on the command line: one dataset each
        datasets[plural(cls)] = cls
    task_lines, written = [], []
    taken: set[str] = set()  # datasets already written or read by a task of the pipeline
    for task in tasks:
        sources = []
        for cls in task.inputs:
            if cls not in latest:
                raise ScaffoldError(
                    f"task {task.name} reads {cls} but no task before it in the pipeline writes "
                    f"{cls}: put the task that writes it first"
                )
            sources.append(latest[cls])
        # every dataset has exactly one writer: a task never writes a dataset that an earlier
        # task wrote or read (that would be a dependency cycle, and the app would not import)
        out = plural(task.output)
        if out in taken or (out in datasets and datasets[out] != task.output):
            out = f"{module_name(task.name)}_{out}"
        base, n = out, 2
        while out in taken or (out in datasets and datasets[out] != task.output):
            out, n = f"{base}_{n}", n + 1
        taken.update([*sources, out])
        datasets[out] = task.output
        latest[task.output] = out
        inputs = ", ".join(f'data["{s}"]' for s in sources)
        args = [f"inputDatasets=[{inputs}]"] if sources else []
        task_lines += [
            f"        {task.name}(",
            *(f"            {a}," for a in args),
            f'            outputDataset=data["{out}"],',
            "        ),",
        ]
        written.append((module_name(task.name), out))
    dataset_lines = [
        f'        "{ds}": hml.Dataset(\n'
        f"            {cls},\n            location,\n            PROJECT,\n            branch,\n"
        f'            name="{ds}",\n            chunkCount=16,\n        ),'
        for ds, cls in datasets.items()
    ]
    variables = [module_name(t.name) for t in tasks]
    imports = [
        *(
            f"from {layout.package}.data_models.{module_name(c)} import {c}"
            for c in sorted(set(datasets.values()))
        ),
        *(
            f"from {layout.package}.tasks.{module_name(t.name)} import {t.name}"
            for t in sorted(tasks, key=lambda t: module_name(t.name))
        ),
    ]
    source = render(
        "pipeline.py",
        pipeline=pipeline,
        package=layout.package,
        app_name=layout.package.replace("_", "-"),
        tasks_text=" -> ".join(t.name for t in tasks),
        imports="\n" + "\n".join(imports) + "\n",
        datasets="\n".join(dataset_lines),
        tasks="\n".join(task_lines),
        task_vars=f"({variables[0]},)" if len(variables) == 1 else ", ".join(variables),
        calls="\n".join(f"        {v}()" for v in variables),
    )
    return source, written
