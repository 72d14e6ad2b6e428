"""Generators of a project and of data model classes. Each returns a Plan: nothing is written
until ``plan.write()`` (the CLI prints ``plan.render()`` for ``--dry-run`` instead)."""

from __future__ import annotations

import os
from pathlib import Path

from ..names import snake_case
from .fields import (
    SCALARS,
    Field,
    ScaffoldError,
    check_class_name,
    check_project_name,
    module_name,
    parse_fields,
)
from .project import Plan, ProjectLayout, require_models
from .render import render

# The requirement a generated project puts on hypermodel; a local checkout for development.
HYPERMODEL_SPEC_ENV = "HML_SOURCE"
SUBPACKAGES = {
    "data_models": "Data model classes (BaseData): `hml new data-model NAME field:type ...`.",
    "tasks": "Tasks over datasets: `hml new task NAME OutputClass --source|--one-to-one`.",
    "pipelines": "",  # has its own __init__ (declare_all)
    "models": "Models: `hml new model NAME ...` (TensorFlow, extra hypermodel[tf]).",
}


def hypermodel_spec(explicit: str | None = None) -> str:
    """What the generated pyproject depends on: ``--hypermodel-spec``, $HML_SOURCE, or
    ``hypermodel>=<this major.minor>`` (the generated code uses this version's API)."""
    spec = explicit or os.environ.get(HYPERMODEL_SPEC_ENV) or default_hypermodel_spec()
    if os.path.isdir(spec):  # a local checkout: a PEP 508 direct reference
        spec = f"hypermodel @ {Path(spec).resolve().as_uri()}"
    if '"' in spec or "\n" in spec:
        raise ScaffoldError(f"hypermodel requirement {spec!r} cannot contain quotes or newlines")
    return spec


def default_hypermodel_spec() -> str:
    """Where the running hypermodel came from, so the new project installs beside it: the
    checkout or wheel it was installed from (pip's ``direct_url.json``, PEP 610), else
    ``hypermodel>=<this major.minor>`` from the index it came from. (The public index's
    ``hypermodel`` is an unrelated 0.1.x release line: never assume it.)"""
    import json
    from importlib import metadata

    from .. import __version__

    try:
        text = metadata.distribution("hypermodel").read_text("direct_url.json")
        url = json.loads(text or "{}").get("url", "") if text else ""
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        url = ""
    if isinstance(url, str) and url.startswith("file://"):
        return f"hypermodel @ {url}"
    major, minor = [*__version__.split("."), "0"][:2]
    return f"hypermodel>={major}.{minor}"


def project_plan(name: str, directory: str | Path = ".", spec: str | None = None) -> Plan:
    """A new project ``name`` in ``directory/<snake_case name>``."""
    package = check_project_name(name)
    root = Path(directory).resolve() / package
    if root.exists() and any(root.iterdir()):
        raise ScaffoldError(
            f"directory {root} already exists and is not empty: choose another name or --directory"
        )
    layout = ProjectLayout(root, package)
    app_name = package.replace("_", "-")
    values = {
        "package": package,
        "app_name": app_name,
        "title": _title(name),
        "env_prefix": package.upper(),
        "hypermodel_spec": hypermodel_spec(spec),
    }
    plan = Plan(root)
    top = {
        "pyproject.toml": "project_pyproject.toml",
        "README.md": "project_readme.md",
        "Makefile": "project_makefile",
        ".gitignore": "project_gitignore",
        "Dockerfile": "project_dockerfile",
        ".dockerignore": "project_dockerignore",
    }
    for file, tmpl in top.items():
        plan.add(root / file, render(tmpl, **values))
    pkg = layout.package_dir
    plan.add(pkg / "__init__.py", render("project_init.py", **values))
    plan.add(pkg / "app.py", render("project_app.py", **values))
    plan.add(pkg / "pipelines" / "__init__.py", render("project_pipelines_init.py", **values))
    plan.add(pkg / "pipelines" / "demo.py", render("project_demo_pipeline.py", **values))
    for sub, doc in SUBPACKAGES.items():
        if doc:
            plan.add_package(pkg / sub, doc)
    plan.add(root / "tests" / "__init__.py", "")
    plan.add(root / "tests" / "conftest.py", render("project_conftest.py", **values))
    plan.add(root / "tests" / "test_app.py", render("project_test_app.py", **values))
    return plan


def _title(name: str) -> str:
    return " ".join(part.capitalize() for part in snake_case(name).split("_") if part)


# -- data models ----------------------------------------------------------------------------------
def data_model_plan(layout: ProjectLayout, class_name: str, field_specs: list[str]) -> Plan:
    """``data_models/<module>.py`` with the class and ``tests/test_<module>.py`` with its tests."""
    check_class_name(class_name)
    fields = parse_fields(field_specs)
    referenced = sorted({f.type_name for f in fields if f.is_model} - {class_name})
    require_models(layout, referenced, f"data model {class_name}")
    if any(f.is_model and f.type_name == class_name and not f.is_list for f in fields):
        raise ScaffoldError(
            f"{class_name} cannot contain itself directly (only as a list, which may be empty)"
        )
    module = module_name(class_name)
    plan = Plan(layout.root)
    plan.add_package(layout.subpackage("data_models"), SUBPACKAGES["data_models"])
    plan.add(
        layout.subpackage("data_models") / f"{module}.py",
        _data_model_source(layout, class_name, fields, referenced),
    )
    plan.add(
        layout.tests_dir / f"test_{module}.py",
        _data_model_test(layout, class_name, fields, referenced),
    )
    return plan


def _temporal_imports(fields: list[Field]) -> list[str]:
    names = sorted({f.type_name for f in fields if SCALARS.get(f.type_name, ("", None))[1]})
    return [f"from datetime import {', '.join(names)}"] if names else []


def _model_imports(layout: ProjectLayout, referenced: list[str]) -> list[str]:
    return [f"from {layout.package}.data_models.{module_name(n)} import {n}" for n in referenced]


def _data_model_source(
    layout: ProjectLayout, class_name: str, fields: list[Field], referenced: list[str]
) -> str:
    ids = [f.name for f in fields if f.is_id]
    stdlib = _temporal_imports(fields)
    imports = [*stdlib, "", "from hypermodel import hml"]
    if referenced:
        imports += ["", *_model_imports(layout, referenced)]
    if not ids:
        bases, id_note = "hml.BaseData", "No id: nest it in a class that has one to store it."
    elif len(ids) == 1:
        bases = f'hml.BaseData, id="{ids[0]}"'
        id_note = f"The id ({ids[0]},) decides the dataset chunk of an object."
    else:
        bases = "hml.BaseData, id=(" + ", ".join(f'"{i}"' for i in ids) + ")"
        id_note = f"The id ({', '.join(ids)}) decides the dataset chunk of an object."
    body = [f"    {f.name}: {f.annotation}" for f in fields] or [
        "    # TODO: declare fields, e.g. `name: str`"
    ]
    return render(
        "data_model.py",
        class_name=class_name,
        imports="\n" + "\n".join(imports).lstrip("\n") + "\n",
        bases=bases,
        id_note=id_note,
        fields="\n".join(body),
    )


def _data_model_test(
    layout: ProjectLayout, class_name: str, fields: list[Field], referenced: list[str]
) -> str:
    module = module_name(class_name)
    stdlib = _temporal_imports(fields)
    nested = [n for n in referenced if n != class_name]
    imports = [*stdlib]
    arguments = [f"        {f.name}={_example(f, class_name)}," for f in fields]
    id_fields = [f for f in fields if f.is_id]
    dataset_test = ""
    if id_fields:
        id_values = ", ".join(SCALARS[f.type_name][2] for f in id_fields)
        id_values += "," if len(id_fields) == 1 else ""
        dataset_test = render(
            "data_model_dataset_test.py",
            module=module,
            class_name=class_name,
            id_values=id_values,
            dataset_name=f"{module}s",
        )
    text = render(
        "data_model_test.py",
        class_name=class_name,
        module=module,
        package=layout.package,
        imports=("\n".join(imports) + "\n") if imports else "",
        arguments="\n".join(arguments),
        dataset_note=" and a dataset" if id_fields else "",
        dataset_test=dataset_test,
    )
    if nested:  # the nested classes are only used through sample()
        text = text.replace(
            f"from {layout.package}.data_models.{module} import {class_name}",
            "\n".join(
                sorted(
                    [
                        *_model_imports(layout, nested),
                        f"from {layout.package}.data_models.{module} import {class_name}",
                    ]
                )
            ),
        )
    return text


def _example(field: Field, class_name: str) -> str:
    if field.is_model and field.type_name == class_name:
        return "[]"  # a list of its own class: empty, or the sample would never end
    value = f"sample({field.type_name})" if field.is_model else SCALARS[field.type_name][2]
    return f"[{value}]" if field.is_list else value
