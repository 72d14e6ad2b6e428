"""Generator of a TensorFlow model: blocks, the model, its batch processor, a training
pipeline, a serving helper and a test (which skips without TensorFlow)."""

from __future__ import annotations

from .fields import ScaffoldError, check_class_name, module_name
from .project import Plan, ProjectLayout, require_models
from .render import render
from .tasks import ModelInfo, carried_ids, check_not_a_data_model, construct, plural, read_model

_NUMERIC = ("int", "float", "bool")


def model_plan(
    layout: ProjectLayout, name: str, input_class: str, output_class: str, blocks: list[str]
) -> Plan:
    check_class_name(name, "model")
    for block in blocks:
        check_class_name(block, "block")
    if len(set(blocks)) != len(blocks):
        raise ScaffoldError(f"model {name}: a block is named twice")
    require_models(layout, sorted({input_class, output_class}), f"model {name}")
    check_not_a_data_model(layout, name, "model")
    for block in blocks:
        check_not_a_data_model(layout, block, "block")
        if block in (name, f"{name}BatchProcessor"):
            raise ScaffoldError(f"model {name}: block {block} has the name of the model's class")
    source, target = read_model(layout, input_class), read_model(layout, output_class)
    module = module_name(name)
    models = layout.subpackage("models")
    plan = Plan(layout.root)
    plan.add_package(models, "Models: `hml new model NAME InputClass OutputClass`.")
    plan.add_package(models / module, f"The {name} model.")
    if blocks:
        plan.add_package(models / "blocks", "Model blocks shared by the models.")
    for block in blocks:  # an existing block is reused, not rewritten
        path = models / "blocks" / f"{module_name(block)}.py"
        if not path.exists():
            plan.add(path, render("model_block.py", block=block))
    values = _values(layout, name, module, source, target, blocks)
    plan.add(models / module / f"{module}.py", render("model_model.py", **values))
    plan.add(
        models / module / f"{module}_batch_processor.py",
        render("model_batch_processor.py", **values),
    )
    plan.add(models / module / "serve.py", render("model_serve.py", **values))
    plan.add(
        layout.subpackage("pipelines") / f"{values['pipeline']}.py",
        render("model_pipeline.py", **values),
    )
    plan.add(layout.tests_dir / f"test_model_{module}.py", render("model_test.py", **values))
    return plan


def model_block_plan(layout: ProjectLayout, name: str) -> Plan:
    """``models/blocks/<module>.py``: one block, for models to use (``--block NAME``)."""
    check_class_name(name, "block")
    check_not_a_data_model(layout, name, "block")
    models = layout.subpackage("models")
    plan = Plan(layout.root)
    plan.add_package(models, "Models: `hml new model NAME InputClass OutputClass`.")
    plan.add_package(models / "blocks", "Model blocks shared by the models.")
    plan.add(models / "blocks" / f"{module_name(name)}.py", render("model_block.py", block=name))
    return plan


def _values(
    layout: ProjectLayout,
    name: str,
    module: str,
    source: ModelInfo,
    target: ModelInfo,
    blocks: list[str],
) -> dict[str, str]:
    numeric = [f for f, a in source.fields.items() if a in _NUMERIC and f not in source.ids]
    floats = [f for f, a in source.fields.items() if a == "float" and f not in source.ids]
    target_field = floats[-1] if len(floats) > 1 else None
    features = [f for f in numeric if f != target_field]
    score = next(
        (f for f, a in target.fields.items() if a == "float" and f not in target.ids), None
    )
    carried = carried_ids(target, source, "obj")
    eval_values = {**carried, **({score: "float(value)"} if score else {})}
    out_values = {score: "float(value)"} if score else {}
    eval_body, eval_needs = construct(target, eval_values, "            ")
    out_body, out_needs = construct(target, out_values, "            ")
    needs = eval_needs | out_needs
    block_vars = [b[0].lower() + b[1:] for b in blocks]
    proc_imports = [
        f"from {layout.package}.data_models.{module_name(c)} import {c}"
        for c in sorted({source.name, target.name})
    ]
    temporal = sorted(n for n in needs if n in ("datetime", "date", "time"))
    head = [f"from datetime import {', '.join(temporal)}", ""] if temporal else []
    if "sample" in needs:
        head += ["from hypermodel.scaffold.samples import sample", ""]
    pipeline = f"{module}_training"
    return {
        "model": name,
        "module": module,
        "package": layout.package,
        "app_name": layout.package.replace("_", "-"),
        "input": source.name,
        "output": target.name,
        "input_module": module_name(source.name),
        "output_module": module_name(target.name),
        "features": repr(tuple(features)).replace("'", '"'),
        "target": f'"{target_field}"' if target_field else "None",
        "construct_eval": eval_body,
        "construct_out": out_body,
        "imports": _join_imports(head, proc_imports),
        "block_params": "".join(f", {v}: {b}" for v, b in zip(block_vars, blocks, strict=True)),
        "block_members": "".join(f"        self.{v} = {v}\n" for v in block_vars),
        "block_calls": "".join(
            f"        hidden = self.{v}(hidden, training=training)\n" for v in block_vars
        ),
        "op_imports": "\n".join(
            f"    {line}"
            for line in sorted(
                [
                    *proc_imports,
                    f"from {layout.package}.models.{module}.{module} import {name}",
                    f"from {layout.package}.models.{module}.{module}_batch_processor "
                    f"import {name}BatchProcessor",
                    *(
                        f"from {layout.package}.models.blocks.{module_name(b)} import {b}"
                        for b in blocks
                    ),
                ]
            )
        ),
        "block_args": ", ".join(f"{v}={b}()" for v, b in zip(block_vars, blocks, strict=True)),
        "pipeline": pipeline,
        "op": f"train_{module}",
        "dataset": plural(source.name),
        "route": module.replace("_", "-"),
        "model_imports": "\n"
        + "\n".join(
            sorted(
                [
                    f"from {layout.package}.models.{module}.{module}_batch_processor "
                    "import FEATURE_COUNT",
                    *(
                        f"from {layout.package}.models.blocks.{module_name(b)} import {b}"
                        for b in blocks
                    ),
                ]
            )
        )
        + "\n",
    }


def _join_imports(head: list[str], project: list[str]) -> str:
    lines = ["", *head] if head else [""]
    return "\n".join([*lines, *project]) + "\n"
