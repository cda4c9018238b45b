"""Shared CLI plumbing: lazy commands, one-line errors with exit code 2, common options."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click

from visitplan.errors import VisitplanError, one_line

EXIT_USER_ERROR = 2
#: click >= 8.2 raises this for a group run without arguments (older clicks print help).
_NO_ARGS: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class VisitplanGroup(click.Group):
    """A group whose commands are imported on first use, and whose user errors are one line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, str] = {}

    def add_lazy(self, name: str, module: str) -> None:
        self._lazy[name] = module

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self._lazy]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module = importlib.import_module(self._lazy[cmd_name])
            command: click.Command = getattr(module, cmd_name.replace("-", "_"))
            return command
        return super().get_command(ctx, cmd_name)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; click's usage errors read as one line like every other user error."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS as exc:  # bare ``visitplan``: the help text is the answer
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            fail(one_line(exc.format_message()) + hint)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VisitplanError as exc:
            fail(str(exc))


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2 (a user mistake)."""
    click.echo(f"error: {one_line(message)}", err=True)
    raise SystemExit(EXIT_USER_ERROR)


def parse_date_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Click callback: a strict ISO date, with the option's name in the error."""
    if value is None:
        return None
    from visitplan.dates import parse_date

    return parse_date(value, f"--{(param.name or 'date').replace('_', '-')}")


def load_protocol(spec: str) -> Any:
    """A built-in protocol name or a protocol file path."""
    from pathlib import Path

    from visitplan.protocol_file import builtin, builtin_names, load

    if not spec.strip():
        raise VisitplanError("--protocol", spec, "must name a built-in protocol or a file")
    if spec in builtin_names():
        return builtin(spec)
    if Path(spec).suffix.lower() in (".toml", ".json") or Path(spec).exists():
        return load(spec)
    raise VisitplanError(
        "--protocol",
        spec,
        f"is neither a built-in ({', '.join(builtin_names())}) nor a protocol file",
    )


protocol_option = click.option(
    "--protocol",
    "-p",
    "protocol_spec",
    default="NCT05124925",
    show_default=True,
    help="A built-in protocol name or a protocol file (.toml/.json).",
)
