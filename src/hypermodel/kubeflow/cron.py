"""Cron expressions for Kubeflow recurring runs.

Kubeflow's scheduler wants six fields with seconds first (``0 0 2 * * *`` is 02:00 every day).
The usual five-field form is converted by prefixing a zero seconds field; anything else is
refused with a message that shows both forms.
"""

from __future__ import annotations

import re

from ..errors import UsageError

# The descriptors Kubeflow's scheduler accepts as they are.
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIELD = re.compile(r"[0-9A-Za-z*?/,\-#]+")
_NAMES = {
    "seconds": (0, 59),
    "minutes": (0, 59),
    "hours": (0, 23),
    "day of month": (1, 31),
    "month": (1, 12),
    "day of week": (0, 7),
}


def _fix(expr: str) -> str:
    return (
        f"cron {expr!r} is not a valid Kubeflow schedule: use six fields, seconds first "
        "('0 0 2 * * *' runs at 02:00 daily), five fields (converted by prefixing '0 '), "
        f"or one of {', '.join(DESCRIPTORS)}"
    )


def _check_numbers(expr: str, fields: list[str]) -> None:
    for (label, (low, high)), value in zip(_NAMES.items(), fields, strict=True):
        if not _FIELD.fullmatch(value):
            raise UsageError(_fix(expr))
        for number in re.findall(r"\d+", value.split("/")[0]):
            if not low <= int(number) <= high:
                raise UsageError(f"{_fix(expr)} ({label} {number} is outside {low}-{high})")


def to_kfp_cron(expr: str) -> tuple[str, str | None]:
    """The six-field cron for ``expr`` and a note when it was converted."""
    text = " ".join(str(expr or "").split())
    if text in DESCRIPTORS or text.startswith("@every "):
        return text, None
    fields = text.split(" ") if text else []
    if len(fields) == 5:
        converted = "0 " + text
        _check_numbers(text, ["0", *fields])
        return converted, (
            f"cron '{text}' has five fields; Kubeflow wants six (seconds first): using '{converted}'"
        )
    if len(fields) == 6:
        _check_numbers(text, fields)
        return text, None
    raise UsageError(_fix(text))
