"""The CLI boundary: errors become one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ..errors import HypermodelError


def fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def run_cli(group: click.Command, argv: Sequence[str] | None, prog_name: str) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = group.main(args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare group: show its help
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(2)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else prog_name
        message = exc.format_message().replace("\n", " ")
        hint = f" (see `{where} --help`)" if exc.ctx else ""
        fail(f"{where}: {message}{hint}", 2)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except HypermodelError as exc:
        fail(str(exc), exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)
