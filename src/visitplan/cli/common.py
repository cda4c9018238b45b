"""Shared CLI plumbing: lazy commands, one-line errors with exit code 2, common options."""

from __future__ import annotations

import contextlib
import contextvars
import errno
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from visitplan import i18n
from visitplan.errors import VisitplanError, one_line
from visitplan.i18n import _

if TYPE_CHECKING:  # for the types only: the CLI imports them when a command runs
    import pendulum

    from visitplan.model import Protocol
    from visitplan.participant import Participant
    from visitplan.site import SiteCalendar

EXIT_USER_ERROR = 2
#: What every help text says about exit codes (``visitplan --help`` and each command's).
EXIT_CODES = (
    "Exit codes: 0 done; 1 a check found a problem (audit verify: the trail is not intact); "
    "2 bad input or a refused change, said in one line on stderr ('error: ...')."
)
#: Where the language typed (``--lang``, before or after the command, or VISITPLAN_LANG) is
#: kept in click's ``ctx.meta``, which a command's context shares with the group's.
_LANG = "visitplan.lang"
_LANG_HELP = (
    "Language of what people read: calendars, tables, messages (default: the site's language, "
    "e.g. fr for BREST, else en; env VISITPLAN_LANG). JSON, CSV and CDISC outputs never change."
)


def _remember_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_LANG] = value
        i18n.set_language(value)  # the whole run is in its own context (VisitplanGroup.main)


#: ``--lang`` of the main group (``visitplan --lang fr due``), also read from VISITPLAN_LANG.
lang_option = click.option(
    "--lang",
    type=click.Choice(i18n.LANGUAGES),
    envvar="VISITPLAN_LANG",
    expose_value=False,
    is_eager=True,
    callback=_remember_language,
    help=_LANG_HELP,
)


def _command_lang() -> click.Option:
    """``--lang`` of a command (``visitplan due --lang fr``): wins over the group's."""
    return click.Option(
        ["--lang"],
        type=click.Choice(i18n.LANGUAGES),
        expose_value=False,
        is_eager=True,
        callback=_remember_language,
        help="Language of what people read (see 'visitplan --help').",
    )


def speak_site(site: SiteCalendar) -> None:
    """Speak ``site``'s language (a :class:`~visitplan.site.SiteCalendar`) for the rest of the
    command, unless a language was typed (``--lang``, VISITPLAN_LANG)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and _LANG not in ctx.meta and site.language:
        i18n.set_language(site.language)


def speak_protocol_site(protocol: Protocol) -> None:
    """:func:`speak_site` for the protocol's first site, when visitplan ships its site file."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or _LANG in ctx.meta or not protocol.sites:
        return
    from visitplan.siteroster import site_calendar_of

    try:
        site = site_calendar_of(protocol, None)
    except VisitplanError:
        return  # a site file that disagrees is reported by the commands that use it
    if site is not None:
        speak_site(site)


#: click >= 8.2 raises this for a group run without arguments (older clicks print help).
_NO_ARGS: tuple[type[click.ClickException], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


class VisitplanGroup(click.Group):
    """A group whose commands are imported on first use, and whose user errors are one line."""

    # Untyped as in click's own signatures: the arguments pass through to click.
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
            name = cmd_name.replace("-", "_")
            # A command named after a keyword (``import``) is defined as ``import_``.
            command: click.Command = getattr(module, name, None) or getattr(module, name + "_")
            return with_exit_codes(command)
        return super().get_command(ctx, cmd_name)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the CLI in a context of its own: the language a run speaks (``--lang``, the
        site's) ends with it, even when several runs share a process (tests, notebooks)."""
        return contextvars.copy_context().run(self._main, *args, **kwargs)

    def _main(
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
        real = sys.stdout
        sys.stdout = _Checked(real)
        try:
            try:
                rv = super().main(args, prog_name, complete_var, False, **extra)
            finally:
                sys.stdout = real
            _flush(real)
        except _StdoutError as exc:
            exc.exit()
        except _NO_ARGS as exc:  # bare ``visitplan``: the help text is the answer
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            fail(one_line(exc.format_message()) + hint)
        except click.Abort:
            click.echo(_("Aborted!"), err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VisitplanError as exc:
            fail(str(exc))


class _StdoutError(Exception):
    """Standard output could not be written (a full disk, a closed pipe)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.error = error

    def exit(self) -> None:
        # Whatever is still buffered goes nowhere: Python's own flush at exit must not fail
        # again with "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        if self.error.errno == errno.EPIPE:
            # The reader stopped reading (``visitplan plan | head``): nothing to report.
            raise SystemExit(1)
        fail(_("standard output: cannot be written: {reason}").format(reason=self.error.strerror))


class _Checked:
    """Standard output (or its binary buffer) whose write errors are checked, as coreutils
    check theirs: a full disk (``> /dev/full``) or a closed pipe raises :class:`_StdoutError`,
    which the CLI reports, instead of a traceback or, for a buffered write, a success."""

    # Untyped: a proxy of a text stream or of its binary buffer, whichever it wraps.
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, data: Any) -> Any:
        try:
            return self._stream.write(data)
        except OSError as exc:
            raise _StdoutError(exc) from None

    def flush(self) -> None:
        _flush(self._stream)

    @property
    def buffer(self) -> _Checked:
        return _Checked(self._stream.buffer)  # AttributeError if it has none, as it would

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _flush(stream: Any) -> None:
    try:
        stream.flush()
    except OSError as exc:
        raise _StdoutError(exc) from None
    except ValueError:  # already closed
        pass


def with_exit_codes(command: click.Command) -> click.Command:
    """``command`` (and each subcommand of a group) with :data:`EXIT_CODES` as its epilog and
    a ``--lang`` option of its own."""
    if not command.epilog:
        command.epilog = EXIT_CODES
    if not any(p.name == "lang" for p in command.params):
        command.params.append(_command_lang())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_exit_codes(sub)
    return command


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2 (a user mistake)."""
    click.echo(error_line(message), err=True)
    raise SystemExit(EXIT_USER_ERROR)


def error_line(message: str) -> str:
    """``error: message`` (in the current language), on one line."""
    return _("error: {message}").format(message=one_line(message))


#: The formats a person reads; every other (json, csv, xpt, toml, ...) is for machines.
HUMAN_FORMATS = ("table", "text")


def machine_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # A machine output reads the same whatever the language (JSON values, CSV cells: the
    # messages of findings too): the whole run speaks English, its errors included.
    if value not in HUMAN_FORMATS:
        ctx.meta[_LANG] = i18n.DEFAULT
        i18n.set_language(i18n.DEFAULT)
    return value


_EXCEL = "visitplan.excel"


def _remember_excel(ctx: click.Context, param: click.Parameter, value: bool | None) -> None:
    if value is not None:
        ctx.meta[_EXCEL] = value


#: ``--excel/--no-excel``: CSV as a French spreadsheet reads it (``;``, a byte-order mark).
excel_option = click.option(
    "--excel/--no-excel",
    default=None,
    expose_value=False,
    callback=_remember_excel,
    help="CSV as a French spreadsheet (Excel) opens it: ';' between cells and a UTF-8 "
    "byte-order mark (default: the site file's excel_csv, else off). Cells are unchanged.",
)


def wants_excel(protocol: Protocol | None) -> bool:
    """Whether this run writes CSV for a French spreadsheet: ``--excel`` or ``--no-excel`` if
    given, else the ``excel_csv`` setting of the protocol site's site file."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and _EXCEL in ctx.meta:
        return bool(ctx.meta[_EXCEL])
    if protocol is None or not protocol.sites:
        return False
    from visitplan.siteroster import site_calendar_of

    try:
        site = site_calendar_of(protocol, None)
    except VisitplanError:
        return False
    return bool(site is not None and site.excel_csv)


def format_choice(*choices: str, help: str | None = None) -> Callable[[_F], _F]:
    """``--format`` (the parameter ``fmt``): one of ``choices``, the first by default. A
    machine format (not in :data:`HUMAN_FORMATS`) makes the command speak English."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        callback=machine_format,
        help=help,
    )


def emit(data: str | bytes, output: str | None) -> None:
    """``data`` to the file ``output``, written atomically (said on stderr), or to stdout."""
    if output is None:
        click.echo(data, nl=False)  # bytes go to the binary stream unchanged
        return
    from visitplan.fileio import atomic_write

    atomic_write(output, data)
    click.echo(_("wrote {file}").format(file=output), err=True)


def echo_json(doc: object) -> None:
    """``doc`` as indented JSON on stdout (UTF-8 as it is, not ``\\u`` escapes)."""
    import json

    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


def parse_date_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> pendulum.Date | None:
    """Click callback: a strict ISO date, with the option's name in the error."""
    if value is None:
        return None
    from visitplan.dates import parse_date

    return parse_date(value, f"--{(param.name or 'date').replace('_', '-')}")


def load_protocol(spec: str) -> Protocol:
    """A built-in protocol name or a protocol file path."""
    from pathlib import Path

    from visitplan.protocol_file import builtin, builtin_names, load

    if not spec.strip():
        raise VisitplanError("--protocol", spec, _("must name a built-in protocol or a file"))
    if spec in builtin_names():
        protocol = builtin(spec)
    elif Path(spec).suffix.lower() in (".toml", ".json", ".yaml", ".yml") or Path(spec).exists():
        protocol = load(spec)
    else:
        raise VisitplanError(
            "--protocol",
            spec,
            _("is neither a built-in ({names}) nor a protocol file").format(
                names=", ".join(builtin_names())
            ),
        )
    speak_protocol_site(protocol)
    return protocol


protocol_option = click.option(
    "--protocol",
    "-p",
    "protocol_spec",
    default="NCT05124925",
    show_default=True,
    help="A built-in protocol name or a protocol file (.toml/.json).",
)


_F = TypeVar("_F", bound=Callable[..., object])


def facts_options(*, required: bool = True) -> Callable[[_F], _F]:
    """The options that state one participant's facts (shared by ``plan`` and ``ics``)."""

    def decorate(func: _F) -> _F:
        options = [
            click.option(
                "--participant", required=required, help="The participant's study code (no names)."
            ),
            click.option(
                "--screening",
                required=required,
                callback=parse_date_option,
                help="Screening date, YYYY-MM-DD.",
            ),
            click.option(
                "--day1", callback=parse_date_option, help="Actual Day 1 (first dose), YYYY-MM-DD."
            ),
            click.option(
                "--actual",
                "actuals",
                multiple=True,
                metavar="CODE=DATE",
                help="An actual visit date, e.g. --actual W4=2022-09-29 (repeatable).",
            ),
            click.option(
                "--flag",
                "flags",
                multiple=True,
                help="A participant flag such as hbcab_positive (repeatable).",
            ),
            click.option(
                "--event",
                "events",
                multiple=True,
                metavar="NAME=DATE",
                help="A dated event, e.g. bcell_recovery=2023-09-01.",
            ),
            click.option(
                "--bcell-count",
                "bcell_counts",
                multiple=True,
                metavar="DATE=VALUE",
                help="A blood B-cell count in the site's unit, e.g. 2023-05-10=95 (repeatable).",
            ),
            click.option(
                "--bcell-baseline",
                type=float,
                help="The pre-treatment B-cell count (default: last count on or before Day 1).",
            ),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def participant_from_options(
    protocol: Protocol,
    participant: str,
    screening: pendulum.Date,
    day1: pendulum.Date | None,
    actuals: tuple[str, ...],
    flags: tuple[str, ...],
    events: tuple[str, ...],
    bcell_counts: tuple[str, ...] = (),
    bcell_baseline: float | None = None,
) -> Participant:
    """A :class:`~visitplan.participant.Participant` from the :func:`facts_options` values."""
    from visitplan.participant import Participant, Record

    records: list[Record] = []
    if day1 is not None:
        records.append(Record(protocol.day1_visit, day1))
    for item in actuals:
        code, day = pair_option(item, "--actual")
        if code == protocol.day1_visit and day1 is not None:
            raise VisitplanError("--actual", item, _("Day 1 is already given by --day1"))
        records.append(Record(code, _date(day, f"--actual {code}")))
    event_dates = {}
    for item in events:
        name, day = pair_option(item, "--event")
        event_dates[name] = _date(day, f"--event {name}")
    # A list, not a dict: two counts on one day are refused by Participant, not overwritten.
    counts = []
    for item in bcell_counts:
        day, value = pair_option(item, "--bcell-count", "DATE=VALUE")
        try:
            counts.append((_date(day, "--bcell-count"), float(value)))
        except ValueError:
            raise VisitplanError("--bcell-count", item, _("the count must be a number")) from None
    return Participant(
        participant,
        screening,
        records=records,
        flags=frozenset(flags),
        events=event_dates,
        bcell_counts=counts,
        bcell_baseline=bcell_baseline,
    )


def pair_option(item: str, option: str, form: str = "NAME=YYYY-MM-DD") -> tuple[str, str]:
    """Split ``KEY=VALUE`` of a repeatable option, or raise a one-line error."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise VisitplanError(option, item, _("must be written {form}").format(form=form))
    return key.strip(), value.strip()


def _date(text: str, field: str) -> pendulum.Date:
    from visitplan.dates import parse_date

    return parse_date(text, field)
