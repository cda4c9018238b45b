"""Eligibility dates: the earliest permissible Day 1 under the protocol's washout rules.

The rules are data (``[[washouts]]`` of the protocol file). A participant's medication and
vaccine history lists, per exposure, the rule it falls under, what it was, the last dose and/or
the last dose change, and the half-life where the rule counts half-lives. :func:`check` plans
the participant with the engine (for the Day 1 and screening dates) and reports, per rule, the
earliest permissible date of the visit the rule binds, whether the planned or actual date breaks
it, and which rule binds Day 1 (the latest earliest date). See docs/events-and-conditions.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pendulum

from visitplan import csvfile
from visitplan.dates import Span, earliest_clear, shift, to_date
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.fileio import read_text
from visitplan.i18n import _
from visitplan.model import Protocol, Since, Washout
from visitplan.participant import Participant

_HALF_LIFE = re.compile(
    r"\A\s*([0-9]+(?:\.[0-9]+)?)\s*(hour|hours|h|day|days|d|week|weeks)\s*\Z", re.ASCII
)
_HOURS = {"hour": 1.0, "h": 1.0, "day": 24.0, "d": 24.0, "week": 168.0}
HISTORY_COLUMNS = ("rule", "what", "last_dose", "last_change", "half_life")


def parse_half_life(value: object, field: str = "half_life") -> float:
    """A half-life written like ``'36 hours'``, ``'12 days'`` or ``'3 weeks'``, in hours."""
    m = _HALF_LIFE.match(value) if isinstance(value, str) and len(value) < 40 else None
    if not m or float(m.group(1)) <= 0:
        raise VisitplanError(
            field, value, _("must be a positive amount in hours, days or weeks, e.g. '12 days'")
        )
    unit = m.group(2)
    hours = float(m.group(1)) * _HOURS[unit if unit in _HOURS else unit.rstrip("s")]
    if hours > MAX_HALF_LIFE_HOURS:
        raise VisitplanError(field, value, _("is longer than ten years"))
    return hours


def _last_dose(value: object) -> pendulum.Date | None:
    return None if value in (None, "") else to_date(value, "last_dose")


def _last_change(value: object) -> pendulum.Date | None:
    return None if value in (None, "") else to_date(value, "last_change")


def _half_life(value: object) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 < value <= MAX_HALF_LIFE_HOURS:
            raise VisitplanError(
                "half_life",
                value,
                _("must be a positive number of hours, at most {MAX_HALF_LIFE_HOURS:.0f}").format(
                    MAX_HALF_LIFE_HOURS=MAX_HALF_LIFE_HOURS
                ),
            )
        return float(value)
    return parse_half_life(value)


@attrs.frozen
class HistoryItem:
    """One exposure of a participant's history, under the washout rule ``rule`` (its code).

    ``what`` is free text for people (e.g. ``rituximab``); ``last_dose`` and ``last_change``
    are the dates the rule counts from (its ``since``); ``half_life_hours`` is needed by rules
    that count half-lives (``half_life`` text such as ``'12 days'`` is accepted too).
    """

    rule: str
    what: str = ""
    last_dose: pendulum.Date | None = attrs.field(default=None, converter=_last_dose)
    last_change: pendulum.Date | None = attrs.field(default=None, converter=_last_change)
    half_life_hours: float | None = attrs.field(
        default=None, converter=_half_life, alias="half_life"
    )


@attrs.frozen
class RuleCheck:
    """One rule against one exposure (or against none: then ``ok`` and no dates).

    ``earliest`` is the earliest permissible date of the visit the rule ``binds`` (Day 1 or
    screening); ``date`` is that visit's planned or actual date; ``ok`` is ``date >= earliest``.
    """

    code: str
    name: str
    anchor: str
    binds: str
    interval: str
    what: str
    last_exposure: pendulum.Date | None
    earliest: pendulum.Date | None
    date: pendulum.Date
    ok: bool
    requirement: str = ""


@attrs.frozen
class Eligibility:
    """The washout report of one participant.

    ``earliest_day1`` is the latest of the Day 1-bound rules' earliest dates and the first day
    of the Day 1 window; ``binding`` is the code of the rule that sets it (None when no rule is
    later than the window start); ``within_window`` is false when that date is past the Day 1
    window (the run-in), i.e. no permissible Day 1 remains for this screening.
    """

    protocol: str
    participant: str
    screening: pendulum.Date
    day1: pendulum.Date
    day1_source: str  # "planned", "given" (a Day 1 to check) or "recorded"
    earliest_day1: pendulum.Date
    binding: str | None
    within_window: bool
    checks: tuple[RuleCheck, ...]

    @property
    def broken(self) -> tuple[RuleCheck, ...]:
        """The checks the planned or actual dates break."""
        return tuple(c for c in self.checks if not c.ok)

    @property
    def ok(self) -> bool:
        """True when no rule is broken (further ``requirement`` texts still apply)."""
        return not self.broken


def check(
    protocol: Protocol,
    participant: Participant | pendulum.Date | str,
    history: Iterable[HistoryItem],
    *,
    day1: pendulum.Date | str | None = None,
) -> Eligibility:
    """Check ``history`` against the washout rules of ``protocol``.

    ``participant`` may be a :class:`Participant` or just a screening date. ``day1`` is a Day 1
    to check (planned or actual); without it the participant's recorded Day 1, else its planned
    target, is checked. Raises :class:`VisitplanError` for an exposure under an unknown rule, or
    missing the date or half-life its rule counts from.
    """
    person = (
        participant
        if isinstance(participant, Participant)
        else Participant("candidate", screening=participant)
    )
    source = "recorded" if person.record(protocol.day1_visit) else "planned"
    if day1 is not None:
        person = person.done(protocol.day1_visit, day1)
        source = "given"
    schedule = plan(protocol, person)
    rules = {w.code: w for w in protocol.washouts}
    items = list(history)
    for i, item in enumerate(items, start=1):
        if item.rule not in rules:
            known = ", ".join(rules) or "none"
            raise VisitplanError(
                f"history item {i} rule",
                item.rule,
                _("unknown washout rule; known: {known}").format(known=known),
            )
    d1 = schedule.visit(protocol.day1_visit)
    checks: list[RuleCheck] = []
    for w in protocol.washouts:
        bound = schedule.visit(w.binds).date
        mine = [(i, it) for i, it in enumerate(items, start=1) if it.rule == w.code]
        if not mine:
            checks.append(_rule_check(w, bound, None, None, None))
        for i, it in mine:
            exposure, earliest = _earliest(w, it, f"history item {i}")
            checks.append(_rule_check(w, bound, it, exposure, earliest))
    earliest_day1, binding = d1.earliest, None
    for c in checks:
        if c.binds == protocol.day1_visit and c.earliest is not None and c.earliest > earliest_day1:
            earliest_day1, binding = c.earliest, c.code
    return Eligibility(
        protocol=protocol.id,
        participant=person.code,
        screening=person.screening,
        day1=d1.date,
        day1_source=source,
        earliest_day1=earliest_day1,
        binding=binding,
        within_window=earliest_day1 <= d1.latest,
        checks=tuple(checks),
    )


def _rule_check(
    w: Washout,
    bound: pendulum.Date,
    item: HistoryItem | None,
    exposure: pendulum.Date | None,
    earliest: pendulum.Date | None,
) -> RuleCheck:
    return RuleCheck(
        code=w.code,
        name=w.name,
        anchor=w.anchor,
        binds=w.binds,
        interval=_describe(w, item.half_life_hours if item else None),
        what=item.what if item else "",
        last_exposure=exposure,
        earliest=earliest,
        date=bound,
        ok=earliest is None or bound >= earliest,
        requirement=w.requirement,
    )


def _earliest(w: Washout, item: HistoryItem, field: str) -> tuple[pendulum.Date, pendulum.Date]:
    """The exposure date the rule counts from, and the earliest permissible bound date."""
    facts = {Since.LAST_DOSE: item.last_dose, Since.LAST_CHANGE: item.last_change}
    for fact, value in facts.items():
        if value is not None and fact not in w.since:
            used = " or ".join(s.value for s in w.since)
            raise VisitplanError(
                f"{field} {fact.value.replace('-', '_')}",
                value.isoformat(),
                _("is not used by rule {code} (it counts from the {used})").format(
                    code=w.code, used=used
                ),
            )
    given = [d for fact, d in facts.items() if fact in w.since and d is not None]
    if not given:
        wanted = " or ".join(s.value.replace("-", "_") for s in w.since)
        raise VisitplanError(
            field,
            item.rule,
            _("needs a {wanted} date for rule {code}").format(wanted=wanted, code=w.code),
        )
    exposure = max(given)
    earliest = earliest_clear(exposure, w.interval.span())
    if w.half_lives is not None:
        if item.half_life_hours is None:
            raise VisitplanError(
                f"{field} half_life",
                None,
                _("is needed: rule {code} counts {half_lives} half-lives").format(
                    code=w.code, half_lives=w.half_lives
                ),
            )
        # Elapsed time: whole days at least n half-lives after the last dose.
        days = math.ceil(w.half_lives * item.half_life_hours / 24)
        earliest = max(earliest, shift(exposure, Span(0, days)))
    elif item.half_life_hours is not None:
        raise VisitplanError(
            f"{field} half_life",
            item.half_life_hours,
            _("is not used by rule {code}").format(code=w.code),
        )
    return exposure, earliest


def _describe(w: Washout, half_life_hours: float | None) -> str:
    if w.half_lives is None:
        return str(w.interval)
    if half_life_hours is None:
        return f"longer of {w.half_lives} half-lives and {w.interval}"
    days = math.ceil(w.half_lives * half_life_hours / 24)
    return f"longer of {w.half_lives} half-lives ({days} days) and {w.interval}"


# -- history files ------------------------------------------------------------------------------
#: A participant's medication and vaccine history is a few lines; a file far larger is not one.
MAX_HISTORY_BYTES = 1024 * 1024
#: The longest half-life accepted (ten years, in hours): a washout of a few of them must still
#: end inside the supported calendar.
MAX_HALF_LIFE_HOURS = 10 * 366 * 24.0


def read_history(text: str, *, source: str = "history", fmt: str = "csv") -> list[HistoryItem]:
    """Parse a history as CSV (columns ``rule,what,last_dose,last_change,half_life``) or JSON
    (a list of objects with those keys). Errors name the source, the row and the column.

    JSON is read by the protocol files' parser (no NaN or infinities, no key given twice, no
    nesting too deep, no number too long); CSV strictly (an unclosed quote is an error).
    """
    rows: list[tuple[str, Mapping[str, Any]]] = []
    if fmt == "json":
        from visitplan.protocol_file.reading import parse

        doc = parse(text, source=source, fmt="json")
        if isinstance(doc, Mapping) and "history" in doc:
            _no_duplicates(doc, source)
            doc = doc["history"]
        if not isinstance(doc, list) or not all(isinstance(x, Mapping) for x in doc):
            raise VisitplanError(source, type(doc).__name__, _("must be a list of objects"))
        rows = [(f"{source} item {i}", x) for i, x in enumerate(doc, start=1)]
        for where, row in rows:
            _no_duplicates(row, where)
    else:
        try:
            lines = csvfile.read_rows(text)
            header = next(lines, (1, []))[1]
            if "rule" not in header:
                raise VisitplanError(
                    f"{source} header",
                    ",".join(header),
                    _("needs columns {items}").format(items=",".join(HISTORY_COLUMNS)),
                )
            if len(set(header)) != len(header):
                twice = sorted({c for c in header if header.count(c) > 1})
                raise VisitplanError(f"{source} header", ",".join(twice), _("column appears twice"))
            for line, cells in lines:
                if not cells:
                    continue  # a blank line
                where = f"{source} row {line}"
                if len(cells) > len(header):
                    raise VisitplanError(
                        where,
                        f"{len(cells)} cells",
                        _("has more cells than the header's {count}").format(count=len(header)),
                    )
                rows.append((where, dict(zip(header, cells, strict=False))))
        except csvfile.CsvError as exc:
            raise VisitplanError(
                f"{source} row", exc.line, _("is not valid CSV: {reason}").format(reason=exc.reason)
            ) from None
    return [_item(where, row) for where, row in rows]


def _no_duplicates(row: Mapping[str, Any], where: str) -> None:
    twice = getattr(row, "duplicate_keys", ())
    if twice:
        raise VisitplanError(f"{where} {twice[0]}", row[twice[0]], _("is given twice"))


def load_history(path: str | Path) -> list[HistoryItem]:
    """Read a history file (``.csv`` or ``.json``, at most :data:`MAX_HISTORY_BYTES`)."""
    path = Path(path)
    text = read_text(
        path, "history file", limit=MAX_HISTORY_BYTES, usual="a history is a few lines"
    )
    fmt = "json" if path.suffix.lower() == ".json" else "csv"
    return read_history(text, source=path.name, fmt=fmt)


def _item(where: str, row: Mapping[str, Any]) -> HistoryItem:
    unknown = [k for k in row if k not in HISTORY_COLUMNS]
    if unknown:
        raise VisitplanError(f"{where} {unknown[0]}", row[unknown[0]], _("unknown column"))

    def text(key: str) -> Any:
        value = row.get(key)
        return value.strip() if isinstance(value, str) else value

    rule = text("rule")
    if not rule or not isinstance(rule, str):
        raise VisitplanError(f"{where} rule", rule, _("is required (a washout rule code)"))
    what = text("what") or ""
    if not isinstance(what, str):
        raise VisitplanError(f"{where} what", what, _("must be text"))
    try:
        return HistoryItem(
            rule=rule,
            what=what,
            last_dose=text("last_dose"),
            last_change=text("last_change"),
            half_life=text("half_life"),
        )
    except VisitplanError as exc:
        raise VisitplanError(f"{where} {exc.field}", exc.value, exc.rule) from None


def eligibility_dict(report: Eligibility) -> dict[str, Any]:
    """The report as the JSON of ``visitplan eligibility --format json``."""

    def iso(d: pendulum.Date | None) -> str | None:
        return d.isoformat() if d is not None else None

    return {
        "schema_version": 1,
        "protocol": report.protocol,
        "participant": {
            "code": report.participant,
            "screening": report.screening.isoformat(),
            "day1": report.day1.isoformat(),
            "day1_source": report.day1_source,
        },
        "earliest_day1": report.earliest_day1.isoformat(),
        "binding": report.binding,
        "within_window": report.within_window,
        "ok": report.ok,
        "rules": [
            {
                "code": c.code,
                "name": c.name,
                "anchor": c.anchor,
                "binds": c.binds,
                "interval": c.interval,
                "what": c.what,
                "last_exposure": iso(c.last_exposure),
                "earliest": iso(c.earliest),
                "date": c.date.isoformat(),
                "ok": c.ok,
                "requirement": c.requirement,
            }
            for c in report.checks
        ],
    }


__all__ = [
    "Eligibility",
    "HistoryItem",
    "RuleCheck",
    "check",
    "eligibility_dict",
    "load_history",
    "parse_half_life",
    "read_history",
]
