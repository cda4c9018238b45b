"""Terminal rendering: the one table renderer every table of the CLI prints through.

A table stays whole at any width of 60 columns or more, and when piped: codes, dates, windows,
study days and times are never cut ("2022-1…" is no date). :func:`print_table` tries, in this
order, until one fits the console's width:

1. the table with its borders, every cell on one line;
2. the same with the text columns (names, messages) wrapped between words;
3. without borders and without the columns that are only decoration, text wrapped, and
   several values in a cell (a date and its time) on lines of their own if need be;
4. one record per block: ``Label: value`` lines, a blank line between records.

A column says how its cells may be broken (:class:`Column`): ``never`` (codes, dates,
windows, study days, times: the column is as wide as its widest cell), ``words`` (several such
values, broken only between them: ``2022-11-22 09:30``) or ``text`` (names, messages, reasons:
wrapped between words, a word longer than the column folded).

When standard output is not a terminal (piped, redirected), the width is fixed:
``$COLUMNS`` if it is set, else :data:`PIPE_WIDTH` (80, rich's default), whatever the terminal
behind the pipe, so a script gets the same text wherever it runs.

Headers and labels are the callers' string literals marked for the catalog (``N_``), one
tuple of :class:`Column` per table; :func:`print_table` and :func:`print_rows` show them in
the current language (visitplan.i18n), and the texts around the tables are translated where
they are made. Cells hold data (codes, dates, names already in the current language).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeAlias

from visitplan.errors import printable
from visitplan.i18n import DEFAULT, N_, _, human_date, language, ngettext

if TYPE_CHECKING:
    import pendulum
    from rich.console import Console, JustifyMethod, RenderableType
    from rich.table import Table
    from rich.text import Text

    from visitplan.model import Offset, Protocol
    from visitplan.schedule import Finding, Schedule, VisitStatus

#: The width of every table when standard output is not a terminal and ``$COLUMNS`` is unset.
PIPE_WIDTH = 80
#: The least width of a text column in a table with borders: narrower, the borders go first.
BOXED_TEXT_MIN = 20
#: The least width of a text column without borders: narrower, one record per block.
TEXT_MIN = 10
#: A text column is at least as wide as its longest word up to this width: a date or a window
#: (``2022-07-12..2022-07-26``) in a message stays whole; a longer word may be folded.
WORD_MAX = 22

Wrap: TypeAlias = Literal["never", "words", "text"]
#: A cell: a plain value (printed as is, see :func:`cell_text`) or an already safe rich Text.
Cell: TypeAlias = "str | int | Text | None"


class Column(NamedTuple):
    """One column of a terminal table."""

    header: str
    #: How a cell may be broken: ``never``, ``words`` (between whole values) or ``text``.
    wrap: Wrap = "never"
    justify: JustifyMethod = "left"  # a Literal: no import of rich at run time
    #: Left out when the table does not fit with its borders (e.g. a visit's kind).
    decoration: bool = False
    #: The header is a text of the catalog, shown in the current language (a visit code
    #: heading a column is data: False).
    translate: bool = True


def _in_language(columns: Sequence[Column]) -> list[Column]:
    # An empty header stays empty: gettext("") is the catalog's metadata.
    return [c._replace(header=_(c.header)) if c.translate and c.header else c for c in columns]


def day_text(day: pendulum.Date, tentative: bool = False) -> str:
    """A date in a table: ISO (the form users type, as in the windows) and its weekday in the
    current language, ``2026-11-05 Thu``, ``2026-11-05 jeu.`` (Babel); ``?`` when tentative."""
    from babel.dates import format_date

    weekday = format_date(day, "EEE", locale=language())
    return f"{day} {weekday}" + ("?" if tentative else "")


def day_heading(day: pendulum.Date) -> str:
    """A date heading a day's lines (the agenda): ``2026-11-05 Thu`` in English (as users
    type dates), the locale's own form elsewhere, ``jeu. 5 nov. 2026``."""
    return day_text(day) if language() == DEFAULT else human_date(day)


class Line(NamedTuple):
    """A line of text among the rows of :func:`print_rows` (a day's heading, a note)."""

    text: str | Text
    indent: int = 0


def make_console() -> Console:
    """The console tables print to: the terminal's width on a terminal; otherwise ``$COLUMNS``
    when it is set, else :data:`PIPE_WIDTH` (never the width of a terminal behind the pipe)."""
    import os
    import sys

    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    columns = os.environ.get("COLUMNS", "").strip()
    width = int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH
    return Console(width=width)


def cell_text(value: object) -> Text:
    """A table cell (or a line) of data, printed as it is: never read as rich markup (``[/b]``),
    with control characters escaped (an ESC sequence in a reason would clear the screen, a CR
    would overwrite the row). Every terminal table of the CLI builds its cells here."""
    from rich.text import Text

    return Text(printable(str(value)))


def _cell(value: Cell) -> Text:
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return cell_text("" if value is None else value)


def _natural(text: Text) -> int:
    return text.cell_len


def _longest_word(text: Text) -> int:
    from rich.cells import cell_len

    return max((cell_len(w) for w in text.plain.split()), default=0)


class _Fit(NamedTuple):
    layout: Literal["boxed", "plain", "blocks"]
    kept: list[int]  # the indexes of the columns shown
    widths: list[int]  # their widths, without padding


def _widths(
    columns: Sequence[Column], rows: Sequence[Sequence[Text]], room: int, *, boxed: bool
) -> list[int] | None:
    """Each column's width so that the whole fits in ``room`` cells, or None if it cannot.

    Text columns may wrap (to :data:`BOXED_TEXT_MIN` in a boxed table, else :data:`TEXT_MIN`);
    ``words`` columns only when not ``boxed``."""
    text_min = BOXED_TEXT_MIN if boxed else TEXT_MIN
    from rich.cells import cell_len

    natural: list[int] = []
    least: list[int] = []
    for i, col in enumerate(columns):
        cells = [row[i] for row in rows]
        widest = max((_natural(c) for c in cells), default=0)
        header_word = max((cell_len(w) for w in col.header.split()), default=0)
        natural.append(max(widest, cell_len(col.header)))
        if col.wrap == "never":
            least.append(max(widest, header_word))
        elif col.wrap == "words" and boxed:
            least.append(natural[-1])
        elif col.wrap == "words":
            least.append(max([header_word, *(_longest_word(c) for c in cells)]))
        else:
            longest = max((_longest_word(c) for c in cells), default=0)
            least.append(min(natural[-1], max(text_min, header_word, min(longest, WORD_MAX))))
    if sum(least) > room:
        return None
    widths = list(least)
    extra = room - sum(widths)
    # The room left makes whole as many columns as it can, the nearest to whole first, values
    # (``words``: a date and its time) before text; what is left then goes a cell at a time
    # to the column furthest from its natural width.
    nearest = sorted((natural[i] - least[i], c.wrap != "words", i) for i, c in enumerate(columns))
    for deficit, _text_last, i in nearest:
        if 0 < deficit <= extra:
            widths[i] += deficit
            extra -= deficit
    while extra > 0:
        short = [(natural[i] - widths[i], i) for i in range(len(widths)) if widths[i] < natural[i]]
        if not short:
            break
        widths[max(short)[1]] += 1
        extra -= 1
    return widths


def _fit(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Text]],
    width: int,
    *,
    boxed: bool,
    indent: int,
) -> _Fit:
    if boxed:
        every = list(range(len(columns)))
        widths = _widths(columns, rows, width - 3 * len(columns) - 1, boxed=True)
        if widths is not None:
            return _Fit("boxed", every, widths)
    kept = [i for i, c in enumerate(columns) if not c.decoration]
    shown = [columns[i] for i in kept]
    cut = [[row[i] for i in kept] for row in rows]
    widths = _widths(shown, cut, width - indent - (len(kept) - 1), boxed=False)
    if widths is not None:
        return _Fit("plain", kept, widths)
    return _Fit("blocks", kept, [])


def _table(columns: Sequence[Column], fit: _Fit, *, header: bool = True) -> Table:
    from rich import box
    from rich.table import Table

    boxed = fit.layout == "boxed"
    table = Table(
        box=box.HEAVY_HEAD if boxed else None,
        padding=(0, 1) if boxed else (0, 1, 0, 0),
        pad_edge=boxed,
        show_header=header,
    )
    for i, w in zip(fit.kept, fit.widths, strict=True):
        col = columns[i]
        table.add_column(col.header, justify=col.justify, width=w, overflow="fold")
    return table


def _print(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable`` line by line without the spaces that pad its lines on the right
    (a piped table's lines end with their last character)."""
    from rich.segment import Segment, Segments

    segments: list[Segment] = []
    for line in console.render_lines(renderable, console.options, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line and not line[-1].control:
            last = line[-1]
            line[-1] = Segment(last.text.rstrip(), last.style)
        segments += [*line, Segment.line()]
    console.print(Segments(segments), end="")


def print_text(text: str | Text, console: Console, *, indent: int = 0) -> None:
    """A line of text (data in it printed as it is), wrapped between words at the console's
    width, ``indent`` spaces in, without trailing spaces."""
    from rich.padding import Padding

    shown = cell_text(text) if isinstance(text, str) else text
    _print(console, Padding(shown, (0, 0, 0, indent)))


def _blocks(columns: Sequence[Column], fit: _Fit, rows: Iterable[Sequence[Text]]) -> Table:
    """``Label: value`` lines, one record per block, a blank line between records."""
    from rich.cells import cell_len
    from rich.table import Table

    labels = [f"{columns[i].header}:" for i in fit.kept]
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True, width=max((cell_len(x) for x in labels), default=0))
    grid.add_column(overflow="fold")
    for n, row in enumerate(rows):
        if n:
            grid.add_row("", "")
        for label, i in zip(labels, fit.kept, strict=True):
            if row[i].plain:
                grid.add_row(label, row[i])
    return grid


def print_table(
    title: str | None,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Cell]],
    console: Console | None = None,
    *,
    sections: Sequence[int] = (),
) -> None:
    """Print ``rows`` under ``title`` as the widest form that fits (see the module's text).

    ``sections``: the indexes of rows after which a rule is drawn (in a table layout).
    """
    from rich.text import Text

    console = console or make_console()
    columns = _in_language(columns)
    cells = [[_cell(c) for c in row] for row in rows]
    fit = _fit(columns, cells, console.width, boxed=True, indent=0)
    if title is not None:
        print_text(Text(printable(title), style="italic"), console)
    if fit.layout == "blocks":
        if cells:
            _print(console, _blocks(columns, fit, cells))
        return
    table = _table(columns, fit)
    for n, row in enumerate(cells):
        table.add_row(*(row[i] for i in fit.kept), end_section=n in sections)
    _print(console, table)


def print_rows(
    columns: Sequence[Column],
    items: Sequence[Line | Sequence[Cell]],
    console: Console | None = None,
    *,
    indent: int = 4,
) -> None:
    """Print rows among lines of text (e.g. an agenda: a line a day, a row a visit, a note
    under a visit), every row with the same column widths, indented by ``indent``.

    The header is printed once, at the top, when the rows fit without borders;
    otherwise each row is a block of ``Label: value`` lines.
    """
    from rich.padding import Padding

    console = console or make_console()
    columns = _in_language(columns)
    rows: list[list[Text]] = []
    stream: list[Line | list[Text]] = []
    for item in items:
        if isinstance(item, Line):
            stream.append(item)
        else:
            rows.append([_cell(c) for c in item])
            stream.append(rows[-1])
    fit = _fit(columns, rows, console.width, boxed=False, indent=indent)
    if fit.layout == "plain" and rows:
        _print(console, Padding(_table(columns, fit), (0, 0, 0, indent)))
    first = True
    for entry in stream:
        if isinstance(entry, Line):
            print_text(entry.text, console, indent=entry.indent)
            first = True
            continue
        if fit.layout == "blocks":
            if not first:
                console.print()
            _print(console, Padding(_blocks(columns, fit, [entry]), (0, 0, 0, indent)))
            first = False
            continue
        table = _table(columns, fit, header=False)
        table.add_row(*(entry[i] for i in fit.kept))
        _print(console, Padding(table, (0, 0, 0, indent)))


# -- schedules -------------------------------------------------------------------------------

#: The columns of a participant's schedule (``plan``, ``show``).
SCHEDULE_COLUMNS = (
    Column(N_("Code")),
    Column(N_("Visit"), "text"),
    Column(N_("Target"), "words"),
    Column(N_("Window")),
    Column(N_("Day"), justify="right"),
    Column(N_("Status"), "words"),
    Column(N_("Kind"), "words", decoration=True),
)
MILESTONE_COLUMNS = (
    Column(N_("Code")),
    Column(N_("Milestone"), "text"),
    Column(N_("Date"), "words"),
)
#: Statuses, kinds of visit and of finding, shown in the current language (their values are
#: the machine outputs' words).
_WORDS = (
    N_("planned"), N_("tentative"), N_("booked"), N_("done"), N_("missed"), N_("cancelled"),
    N_("screening"), N_("dosing"), N_("assessment"), N_("biopsy"), N_("follow-up"),
    N_("end-of-study"), N_("unscheduled"),
    N_("out-of-window"), N_("dose-gap"), N_("overdue"), N_("held"), N_("unplanned"),
    N_("appointment"),
)  # fmt: skip


def visit_state(status: VisitStatus, actual: pendulum.Date | None) -> str:
    """``done 2026-11-03``, ``planned``: a visit's status in the current language."""
    return _(status.value) + (f" {actual}" if actual else "")


def finding_line(f: Finding) -> str:
    """A finding as a line: ``W4: out-of-window: done ...``, its kind in the current language
    (its message is already in it)."""
    return _("{visit}: {kind}: {message}").format(
        visit=f.visit, kind=_(f.kind.value), message=f.message
    )


def _status_style(status: VisitStatus) -> str:
    return {"done": "green", "missed": "red", "cancelled": "dim"}.get(status.value, "")


def print_schedule(protocol: Protocol, schedule: Schedule, console: Console | None = None) -> None:
    """Print a participant's schedule as a table, then its milestones and findings.

    Codes, dates, windows, study days and statuses are never cut short ("2022-1…" is no date):
    the table is printed through :func:`print_table`.
    """
    from rich.text import Text

    console = console or make_console()
    lang = language()
    rows: list[list[Cell]] = []
    for v in schedule.visits:
        status = visit_state(v.status, v.actual)
        rows.append(
            [
                v.code,
                protocol.visit_name(v.base_code or v.code, v.name, v.occurrence, lang),
                day_text(v.target, v.tentative),
                "" if v.earliest == v.latest else f"{v.earliest}..{v.latest}",
                v.study_day,
                Text(printable(status), style=_status_style(v.status)),
                _(v.kind.value),
            ]
        )
    title = _("{study} participant {participant}: Day 1 {day1}").format(
        study=protocol.id, participant=schedule.participant, day1=schedule.day1
    )
    print_table(title, SCHEDULE_COLUMNS, rows, console)
    if schedule.milestones:
        milestones: list[list[Cell]] = [
            [m.code, protocol.milestone_name(m.code, m.name, lang), day_text(m.date, m.tentative)]
            for m in schedule.milestones
        ]
        print_table(_("Milestones (dates that are not visits)"), MILESTONE_COLUMNS, milestones,
                    console)  # fmt: skip
        if any(m.tentative for m in schedule.milestones):
            print_text(
                _("? tentative milestone: moves while the last dose is still planned"), console
            )
    if any(v.tentative for v in schedule.visits):
        print_text(_("? tentative: the date waits for an event (e.g. B-cell recovery)"), console)
    for f in schedule.findings:
        print_text(Text(printable(f"! {finding_line(f)}"), style="yellow"), console)


# -- the schedule of activities --------------------------------------------------------------

#: The rows of the schedule of activities above the procedures (visits as columns).
ACTIVITY_ROWS = (N_("Visit"), N_("Epoch"), N_("Timing"), N_("Window"), N_("Day"))
#: The schedule of activities with one row a visit, when the visits do not fit as columns.
ACTIVITY_COLUMNS = (
    Column(N_("Code")),
    Column(N_("Visit"), "text"),
    Column(N_("Epoch")),
    Column(N_("Timing"), "words"),
    Column(N_("Window")),
    Column(N_("Day"), justify="right"),
    Column(N_("Procedures"), "words"),
)


def print_activities(protocol: Protocol, console: Console | None = None) -> None:
    """Print the schedule of activities as protocol documents do: visits as columns, timing
    rows (epoch, timing, window, planned study day) on top, then one row a procedure.

    ``X`` marks a procedure done at the visit, ``(X)`` one done only for participants with
    its flag; a visit only for flagged participants is marked ``*``. ``Day`` is the planned
    study day where it is a fixed number of days from Day 1 (SDTM TV's VISITDY), with ``...``
    for a repeating visit (its first occurrence).

    When the visits do not fit side by side (each cell on one line, with the borders), the
    table is turned: one row a visit, its procedures listed (``(CODE)`` for a flagged one),
    or, narrower still, one block a visit.
    """
    console = console or make_console()
    visits = _activity_visits(protocol)
    procs = {p.code: p for v in protocol.visits for p in v.procedures}
    marks = {
        code: [
            ("(X)" if p.condition else "X") if p in v.procedures else "" for v in protocol.visits
        ]
        for code, p in procs.items()
    }
    title = _("{study}: schedule of activities").format(study=protocol.id)
    wide = (
        Column(""),
        *(Column(v[0], "words", justify="center", translate=False) for v in visits),
    )
    rows: list[list[Cell]] = [
        [_(label), *(v[n + 1] for v in visits)] for n, label in enumerate(ACTIVITY_ROWS)
    ]
    rows += [[code, *found] for code, found in marks.items()]
    cells = [[_cell(c) for c in row] for row in rows]
    # Side by side only when every cell fits on one line inside the borders: a visit's timing
    # broken over three lines of a narrow column reads worse than one row a visit.
    if _fit(wide, cells, console.width, boxed=True, indent=0).layout == "boxed":
        print_table(title, wide, rows, console, sections=(len(ACTIVITY_ROWS) - 1,))
    else:
        turned: list[list[Cell]] = []
        for n, v in enumerate(visits):
            done = [
                f"({code})" if procs[code].condition else code
                for code, found in marks.items()
                if found[n]
            ]
            turned.append([*v, " ".join(done)])
        print_table(title, ACTIVITY_COLUMNS, turned, console)
    print_text(
        _("scr = screening date, LD = last dose, q = every; Day = planned study day"), console
    )
    lang = language()
    names = [
        _("{code}: {text}").format(code=code, text=p.name_in(lang)) for code, p in procs.items()
    ]
    for note in [*names, *_activity_notes(protocol)]:
        print_text(note, console)


def _activity_visits(protocol: Protocol) -> list[tuple[str, str, str, str, str, str]]:
    """Code, name, epoch, timing, window and planned study day of each visit, as printed."""
    from visitplan.export.cdisc import planned_study_days

    days = planned_study_days(protocol)
    lang = language()
    found = []
    for v in protocol.visits:
        timing = f"{_anchor_name(v.anchor, short=True)} {'-' if v.offset.value < 0 else '+'}"
        timing += _short(abs(v.offset.value), v.offset.unit.value)
        if v.repeat:
            timing += f" q{_short(v.repeat.every.value, v.repeat.every.unit.value)}"
        w = v.window
        before = _short(w.before.value, w.before.unit.value)
        after = _short(w.after.value, w.after.unit.value)
        if w.before.value == 0 and w.after.value == 0:
            window = ""
        elif before == after:
            window = f"±{before}"
        else:
            window = f"-{before}/+{after}"
        first = days.get(f"{v.code}1" if v.repeat else v.code)
        day = "" if first is None else f"{first}{'...' if v.repeat else ''}"
        code = v.code + (" *" if v.condition else "")
        found.append((code, v.name_in(lang), v.epoch, timing, window, day))
    return found


def _activity_notes(protocol: Protocol) -> list[str]:
    """What the cells cannot say: repeats, strict windows, waits, conditions, doses."""
    notes: list[str] = []
    for v in protocol.visits:
        if v.repeat:
            r = v.repeat
            ends = [
                ngettext("{n} time", "{n} times", r.count).format(n=r.count) if r.count else "",
                _("until +{offset}").format(offset=duration_text(r.until)) if r.until else "",
                _("until {event}").format(event=r.stop_event) if r.stop_event else "",
                _("until {visit}").format(visit=r.stop_visit) if r.stop_visit else "",
            ]
            notes.append(
                _(
                    "{code}: repeats every {every} from its first occurrence, {ends} "
                    "(whichever comes first)"
                ).format(
                    code=v.code,
                    every=duration_text(r.every),
                    ends=", ".join(e for e in ends if e),
                )
            )
        if v.window.strict:
            notes.append(
                _("{code}: strict window (a date outside it is refused)").format(code=v.code)
            )
        if v.wait_for:
            notes.append(
                _(
                    "{code}: on the {event} date once recorded (kept inside the window); "
                    "until then tentative, at the latest date"
                ).format(code=v.code, event=v.wait_for)
            )
        if v.not_before:
            notes.append(
                _("{code}: never before {anchor} + {offset}").format(
                    code=v.code,
                    anchor=_anchor_name(v.not_before.anchor),
                    offset=duration_text(v.not_before.offset),
                )
            )
        if v.condition:
            notes.append(
                _("{code} *: only for participants flagged {flag}").format(
                    code=v.code, flag=v.condition
                )
            )
    procs = {p.code: p for v in protocol.visits for p in v.procedures}
    lang = language()
    for code, p in procs.items():
        if p.condition:
            notes.append(
                _("(X) {code}: only for participants flagged {flag}").format(
                    code=code, flag=p.condition
                )
            )
        if p.dose:
            notes.append(_("{code}: {text}").format(code=code, text=p.dose.describe(lang)))
    return notes


def duration_text(offset: Offset) -> str:
    """``12 weeks``, ``12 semaines``: an amount of time in the current language (Babel's CLDR
    units; ordinary spaces, so that a terminal wraps the text as it should)."""
    from babel.units import format_unit

    unit = {"days": "duration-day", "weeks": "duration-week", "months": "duration-month"}
    text = format_unit(abs(offset.value), unit[offset.unit.value], locale=language())
    sign = "-" if offset.value < 0 else ""
    return sign + str(text).replace("\xa0", " ").replace("\u202f", " ")


#: The short units of the schedule of activities (``+4w``), translated: ``+4sem``.
_SHORT_UNITS = {"days": N_("{n}d"), "weeks": N_("{n}w"), "months": N_("{n}mo")}


def _short(value: int, unit: str) -> str:
    return _(_SHORT_UNITS[unit]).format(n=value)


def _anchor_name(anchor: object, *, short: bool = False) -> str:
    text = str(anchor)
    names = {"last_dose": _("last dose"), "screening": _("screening")}
    if short:
        # Translators: the short names of the schedule of activities' legend (LD = last dose,
        # scr = screening date).
        names = {"last_dose": _("LD"), "screening": _("scr")}
    return names.get(text, text)
