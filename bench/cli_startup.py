"""cli-startup: wall time of the demo app's `--help` vs `python -c pass` and a bare click app.

Targets: <= 0.3 s, and <= 1.5x a bare click app doing the same (a group with subcommands).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import PYTHON, line, median_command, ratio

BARE_CLICK = """
import click

@click.group()
def cli():
    "A bare click app."

@cli.group()
def pipelines():
    "Pipelines."

@pipelines.command()
@click.option("--rows", type=int)
def run(rows):
    "Run."

cli()
"""


def main() -> int:
    runs = 15
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare_click.py"
        bare.write_text(BARE_CLICK)
        empty = median_command([PYTHON, "-c", "pass"], runs=runs)
        click_app = median_command([PYTHON, str(bare), "--help"], runs=runs)
        ours = median_command([PYTHON, "-m", "wines.app", "--help"], runs=runs)
        hml = median_command([PYTHON, "-m", "hypermodel.cli.hml_cli", "--help"], runs=runs)
    line("cli-startup", "python -c pass", empty, runs=runs)
    line("cli-startup", "bare click app --help", click_app, runs=runs)
    line("cli-startup", "wines --help", ours, runs=runs)
    line("cli-startup", "hml --help", hml, runs=runs)
    ratio("cli-startup", "wines --help", "bare click app", ours / click_app, "<= 1.5x")
    ratio("cli-startup", "wines --help", "python -c pass", ours / empty, "informational")
    ok = ours <= 0.3 and ours / click_app <= 1.5
    print(f"cli-startup: {'PASS' if ok else 'MISS'} (target <= 0.3 s and <= 1.5x bare click)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
