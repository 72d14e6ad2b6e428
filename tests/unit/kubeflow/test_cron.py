from __future__ import annotations

import pytest

from hypermodel.errors import UsageError
from hypermodel.kubeflow.cron import to_kfp_cron


@pytest.mark.parametrize(
    "expr", ["0 0 2 * * *", "*/30 * * * * *", "0 15 10 ? * MON-FRI", "0 0 0 1 1,6 *"]
)
def test_six_fields_pass_unchanged(expr: str) -> None:
    assert to_kfp_cron(expr) == (expr, None)


def test_five_fields_get_a_zero_seconds_field_and_a_note() -> None:
    cron, note = to_kfp_cron("30 2 * * *")
    assert cron == "0 30 2 * * *"
    assert note is not None and "'0 30 2 * * *'" in note and "five fields" in note


def test_extra_whitespace_is_normalised() -> None:
    assert to_kfp_cron("  0  0 2 * *   * ") == ("0 0 2 * * *", None)


@pytest.mark.parametrize("expr", ["@daily", "@hourly", "@every 1h30m"])
def test_descriptors_pass(expr: str) -> None:
    assert to_kfp_cron(expr) == (expr, None)


@pytest.mark.parametrize(
    "expr", ["", "1 2 3", "0 0 2 * * * 2027", "daily", "0 0 2 * * $", "@fortnightly"]
)
def test_other_shapes_are_refused_with_the_fix(expr: str) -> None:
    with pytest.raises(
        UsageError, match=r"not a valid Kubeflow schedule: use six fields, seconds first"
    ):
        to_kfp_cron(expr)


@pytest.mark.parametrize(
    ("expr", "label"),
    [
        ("0 61 2 * * *", "minutes 61"),
        ("99 0 2 * * *", "seconds 99"),
        ("0 25 * * *", "hours 25"),
        ("0 0 2 * 13 *", "month 13"),
    ],
)
def test_out_of_range_numbers_are_named(expr: str, label: str) -> None:
    with pytest.raises(UsageError, match=label):
        to_kfp_cron(expr)
