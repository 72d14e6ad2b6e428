"""User names are validated once, with full-match semantics: nothing after the name slips by."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypermodel.errors import UnsafeNameError
from hypermodel.names import check_name
from hypermodel.scaffold.fields import ScaffoldError, check_class_name
from hypermodel.storage.local import LocalStorage
from hypermodel.tracking.run import Run
from hypermodel.tracking.store import check_run_id

BAD = ["x\n", "x\r", "\nx", "x\n\n", "a\x00b", "../x", "a/b", "..", ".x", "", "x y", "é"]


@pytest.mark.parametrize("value", BAD)
def test_check_name_refuses_whatever_follows_or_precedes(value: str) -> None:
    with pytest.raises(UnsafeNameError, match="is not allowed"):
        check_name(value, "dataset")


def test_check_name_bounds_and_accepts() -> None:
    assert check_name("wine-classifier_v1.2", "model") == "wine-classifier_v1.2"
    assert check_name("a" * 128, "model")
    with pytest.raises(UnsafeNameError, match="at most 128 characters"):
        check_name("a" * 129, "model")
    assert check_run_id("r" * 255)
    for bad in ("r\n", "r" * 256, "a\x00b"):
        with pytest.raises(UnsafeNameError, match="run name"):
            check_run_id(bad)


@pytest.mark.parametrize("project", ["../x", "a\x00b", "x\n", "a/b"])
def test_run_project_is_validated_at_the_boundary(project: str, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "hml")
    with pytest.raises(UnsafeNameError, match="project name"):
        Run("ok", storage=storage, project=project)
    assert not list(storage.list())  # nothing was written for a refused run


def test_run_project_from_the_environment_is_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HML_PROJECT", "../escape")
    with pytest.raises(UnsafeNameError, match=r"project name '\.\./escape'"):
        Run("ok", storage=LocalStorage(tmp_path / "hml"))


def test_run_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeNameError, match="run name"):
        Run("exp\n", storage=LocalStorage(tmp_path / "hml"))


def test_other_validators_match_the_whole_text() -> None:
    with pytest.raises(ScaffoldError):
        check_class_name("Example\n")
