"""Field specs and names: what is accepted, and the errors for what is not."""

from __future__ import annotations

import pytest

from hypermodel.errors import UsageError
from hypermodel.scaffold.fields import (
    Field,
    ScaffoldError,
    check_class_name,
    check_project_name,
    parse_field,
    parse_fields,
)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("classId:int:id", Field("classId", "int", is_id=True)),
        ("name:str:id", Field("name", "str", is_id=True)),
        ("value:float", Field("value", "float")),
        ("creation:datetime", Field("creation", "datetime")),
        ("values:List[Other]", Field("values", "Other", is_list=True)),
        ("times:list[time]", Field("times", "time", is_list=True)),
        ("other:Other", Field("other", "Other")),
    ],
)
def test_valid_specs(spec: str, field: Field) -> None:
    assert parse_field(spec) == field


def test_annotations() -> None:
    assert parse_field("values:List[Other]").annotation == "list[Other]"
    assert parse_field("when:date").annotation == "date"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("value", "name:type"),
        ("value:float:key", "name:type"),
        ("a:b:c:d", "name:type"),
        ("class:int", "not a valid Python identifier"),
        ("_hidden:int", "not a valid Python identifier"),
        ("1st:int", "not a valid Python identifier"),
        ("value:float:id", "only int and str"),
        ("values:List[int]:id", "only int and str"),
        ("when:datetime:id", "only int and str"),
        ("thing:lowercaseclass", "CamelCase"),
        ("values:List[not-a-class]", "CamelCase"),
    ],
)
def test_invalid_specs(spec: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        parse_field(spec)


def test_duplicate_fields_are_refused() -> None:
    with pytest.raises(ScaffoldError, match="declared twice"):
        parse_fields(["a:int", "a:str"])


def test_scaffold_errors_are_usage_errors() -> None:
    assert issubclass(ScaffoldError, UsageError)  # exit code 2 on the CLI


@pytest.mark.parametrize("name", ["lower", "With-Dash", "With_Underscore", "../Up", "", "None"])
def test_bad_class_names(name: str) -> None:
    with pytest.raises(ScaffoldError):
        check_class_name(name)


def test_project_names() -> None:
    assert check_project_name("MyProject") == "my_project"
    assert check_project_name("my_project") == "my_project"
    assert check_project_name("HTTPServer2") == "http_server2"
    for bad in ("2Fast", "../evil", "has space", "Tests", "hypermodel", "import"):
        with pytest.raises(ScaffoldError):
            check_project_name(bad)
