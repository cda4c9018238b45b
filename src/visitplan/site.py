"""A site's calendar: working days, public holidays, clinic hours, closures and capacity.

The settings are data (a TOML site file, e.g. ``sites/BREST.toml``), read into a frozen
:class:`SiteCalendar`. This module answers "can a visit happen on this day?" and proposes the
bookable days inside a visit's window; it never moves a date by itself. The window bounds come
from the engine's :class:`~visitplan.schedule.PlannedVisit`; days are stepped with
:func:`visitplan.dates.next_day`, the project's one calendar arithmetic.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import pendulum

from visitplan import i18n
from visitplan.codes import SITE_CODE, wall_time
from visitplan.dates import next_day, parse_date
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.fileio import read_text
from visitplan.i18n import N_, _
from visitplan.model import ProcedureKind, Site, VisitKind
from visitplan.protocol_file.reading import ProtocolErrors, Reader, parse
from visitplan.schedule import PlannedVisit

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # ISO weekday 1..7
_DAY_NAMES = (
    N_("clinic closed on Mondays"),
    N_("clinic closed on Tuesdays"),
    N_("clinic closed on Wednesdays"),
    N_("clinic closed on Thursdays"),
    N_("clinic closed on Fridays"),
    N_("clinic closed on Saturdays"),
    N_("clinic closed on Sundays"),
)
#: Defaults when a site file gives no hours (Brest's file states them anyway).
_OPENS = pendulum.time(8, 30)
_CLOSES = pendulum.time(17, 0)
#: A site file is a few kilobytes (a year's closures included); anything far larger is not one.
MAX_SITE_BYTES = 1024 * 1024


class MovePolicy(enum.Enum):
    """How to choose a day when a target is not bookable (never applied silently).

    ``nearest-earlier``: the closest bookable day before the target; ``nearest-later``: the
    closest after it; ``nearest``: the closest either way, the earlier one on a tie (a visit
    kept early still has days left in its window if the appointment falls through). A policy
    only looks inside the visit's window: when it finds nothing, there is no proposal.
    """

    NEAREST_EARLIER = "nearest-earlier"
    NEAREST_LATER = "nearest-later"
    NEAREST = "nearest"


@attrs.frozen
class Closure:
    """Days the clinic is closed, ``start`` to ``end`` inclusive, with the reason shown."""

    start: pendulum.Date
    end: pendulum.Date
    reason: str = N_("site closed")  # else the site file's own text, shown as written

    def covers(self, day: pendulum.Date) -> bool:
        """True if ``day`` is one of the closed days."""
        return self.start <= day <= self.end


def capacity_kinds(visit: PlannedVisit) -> frozenset[VisitKind]:
    """The kinds a visit counts against in the site's daily capacity.

    A visit counts as its own kind, and also as a biopsy visit when any of its procedures is a
    biopsy: the biopsy room and pathologist are the limit, whatever the visit is called (in
    NCT05124925 screening and end of study take a biopsy too, not only the EOT visit).
    """
    kinds = {visit.kind}
    if any(p.kind is ProcedureKind.BIOPSY for p in visit.procedures):
        kinds.add(VisitKind.BIOPSY)
    return frozenset(kinds)


@attrs.frozen
class SiteCalendar:
    """A site's settings: zone, holidays, clinic days and hours, closures, daily capacity.

    ``weekdays`` are ISO weekday numbers (1 = Monday ... 7 = Sunday). ``opens``/``closes``
    are wall-clock times in ``timezone``; an appointment starts at or after ``opens`` and
    before ``closes``. ``capacity`` caps the visits of a kind per day (see
    :func:`capacity_kinds`); ``daily_limit`` caps all visits of a day. ``policy`` is the
    default :class:`MovePolicy` when a caller names none.
    """

    code: str
    name: str
    timezone: str
    country: str
    subdivision: str | None = None
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    opens: pendulum.Time = _OPENS
    closes: pendulum.Time = _CLOSES
    closures: tuple[Closure, ...] = ()
    capacity: Mapping[VisitKind, int] = attrs.field(factory=dict, hash=False)
    daily_limit: int | None = None
    policy: MovePolicy = MovePolicy.NEAREST
    #: The language of the site's team: what visitplan's outputs read in there (calendars,
    #: tables, messages, holiday names) unless ``--lang`` says otherwise.
    language: str = "en"
    #: CSV outputs for a French spreadsheet (``;``, a byte-order mark) unless ``--no-excel``.
    excel_csv: bool = False

    # -- days ------------------------------------------------------------------------------
    def holiday(self, day: pendulum.Date) -> str | None:
        """The name of the public holiday on ``day`` at this site, if it is one, in the
        current language when the ``holidays`` package has it ("Lundi de Pâques")."""
        return _holidays(self.country, self.subdivision, i18n.language()).get(day)

    def closed_reason(self, day: pendulum.Date) -> str | None:
        """Why no visit can happen on ``day`` (weekday, holiday, closure), or None if open;
        in the current language."""
        # A holiday is named even on a weekend: the agenda shows which holiday it is.
        name = self.holiday(day)
        if name:
            return _("public holiday: {name}").format(name=name)
        if day.isoweekday() not in self.weekdays:
            return _(_DAY_NAMES[day.isoweekday() - 1])
        for c in self.closures:
            if c.covers(day):
                return _("closure: {reason}").format(reason=_(c.reason))
        return None

    def is_working_day(self, day: pendulum.Date) -> bool:
        """True if the clinic is open on ``day``."""
        return self.closed_reason(day) is None

    def days(self, start: pendulum.Date, end: pendulum.Date) -> Iterator[pendulum.Date]:
        """Every calendar day from ``start`` to ``end`` inclusive."""
        day = start
        while day <= end:
            yield day
            day = next_day(day)

    def working_days(self, start: pendulum.Date, end: pendulum.Date) -> list[pendulum.Date]:
        """The open days from ``start`` to ``end`` inclusive, in date order."""
        return [d for d in self.days(start, end) if self.is_working_day(d)]

    # -- capacity --------------------------------------------------------------------------
    def over_capacity(self, load: Mapping[VisitKind, int], total: int) -> list[str]:
        """Which limits a day's load breaks, e.g. ``["biopsy 3/2"]`` (empty if none)."""
        broken = [
            f"{kind.value} {load.get(kind, 0)}/{limit}"
            for kind, limit in sorted(self.capacity.items(), key=lambda kv: kv[0].value)
            if load.get(kind, 0) > limit
        ]
        if self.daily_limit is not None and total > self.daily_limit:
            broken.append(f"all visits {total}/{self.daily_limit}")
        return broken

    def has_room(
        self, load: Mapping[VisitKind, int], total: int, kinds: Iterable[VisitKind]
    ) -> bool:
        """True if one more visit counting as ``kinds`` fits a day already at ``load``."""
        for kind in kinds:
            limit = self.capacity.get(kind)
            if limit is not None and load.get(kind, 0) + 1 > limit:
                return False
        return self.daily_limit is None or total + 1 <= self.daily_limit

    # -- time ------------------------------------------------------------------------------
    def in_hours(self, time: pendulum.Time) -> bool:
        """True if an appointment may start at wall-clock ``time``."""
        return self.opens <= time < self.closes

    @property
    def hours(self) -> str:
        """Opening hours as text, e.g. ``08:30-17:00``."""
        return f"{self.opens.strftime('%H:%M')}-{self.closes.strftime('%H:%M')}"

    def check_site(self, site: Site) -> None:
        """Refuse a protocol site entry whose zone or country disagrees with these settings."""
        for field, mine, theirs in (
            ("code", self.code, site.code),
            ("timezone", self.timezone, site.timezone),
            ("country", self.country, site.country),
        ):
            if mine != theirs:
                raise VisitplanError(
                    f"site {self.code}.{field}",
                    mine,
                    _("disagrees with the protocol's site entry ({theirs})").format(theirs=theirs),
                )


@functools.cache
def _holidays(country: str, subdivision: str | None, lang: str) -> Mapping[Any, str]:
    import holidays

    # The mapping computes each year on first use (expand=True), so one object serves all years.
    # Names in ``lang`` when the country's calendar has it, else in its own default language
    # (always named explicitly: the package otherwise follows the process's locale).
    supported = holidays.country_holidays(country, subdiv=subdivision).supported_languages
    language = i18n.holiday_language(supported, lang) or i18n.holiday_language(supported, "en")
    return holidays.country_holidays(country, subdiv=subdivision, language=language)


# -- proposals ---------------------------------------------------------------------------------


@attrs.frozen
class DayCheck:
    """Whether a visit's target is bookable, and if not, its bookable days nearest first."""

    participant: str
    visit: str
    target: pendulum.Date
    earliest: pendulum.Date
    latest: pendulum.Date
    reason: str | None
    alternatives: tuple[pendulum.Date, ...] = ()

    @property
    def ok(self) -> bool:
        """True if the target itself is a working day."""
        return self.reason is None


def nearest_first(
    target: pendulum.Date, days: Iterable[pendulum.Date]
) -> tuple[pendulum.Date, ...]:
    """``days`` ordered by distance from ``target``, the earlier one first on a tie."""
    t = target.toordinal()
    return tuple(sorted(days, key=lambda d: (abs(d.toordinal() - t), d)))


def check_visit(site: SiteCalendar, participant: str, visit: PlannedVisit) -> DayCheck:
    """Is ``visit``'s target a working day? If not, the open days of its window, nearest first.

    The window is the engine's ``[earliest, latest]``; nothing is recomputed and nothing moves.
    """
    reason = site.closed_reason(visit.target)
    alternatives: tuple[pendulum.Date, ...] = ()
    if reason is not None:
        alternatives = nearest_first(visit.target, site.working_days(visit.earliest, visit.latest))
    return DayCheck(
        participant, visit.code, visit.target, visit.earliest, visit.latest, reason, alternatives
    )


def choose(
    target: pendulum.Date, candidates: Iterable[pendulum.Date], policy: MovePolicy
) -> pendulum.Date | None:
    """The day ``policy`` picks among ``candidates`` (bookable days), or None if none fits.

    The target itself is picked whenever it is a candidate.
    """
    ordered = nearest_first(target, candidates)
    for day in ordered:
        if day == target:
            return day
        if policy is MovePolicy.NEAREST:
            return day
        if policy is MovePolicy.NEAREST_EARLIER and day < target:
            return day
        if policy is MovePolicy.NEAREST_LATER and day > target:
            return day
    return None


# -- site files --------------------------------------------------------------------------------


def builtin_site_names() -> list[str]:
    """Codes of the site files shipped with visitplan (e.g. ``BREST``)."""
    folder = resources.files("visitplan") / "sites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def builtin_site(code: str = "BREST") -> SiteCalendar:
    """A site calendar shipped with visitplan."""
    return _builtin_site(code)


@functools.cache  # a frozen value read from package data: read once per process
def _builtin_site(code: str) -> SiteCalendar:
    if code not in builtin_site_names():
        raise VisitplanError(
            "site",
            code,
            _("has no built-in site file; built in: {items}").format(
                items=", ".join(builtin_site_names())
            ),
        )
    text = (resources.files("visitplan") / "sites" / f"{code}.toml").read_text(encoding="utf-8")
    return loads_site(text, source=f"builtin:{code}")


def load_site(path: str | Path) -> SiteCalendar:
    """Read a site file (TOML); every error names the field, the value and the rule."""
    text = read_text(
        path, "site file", encoding="utf-8", limit=MAX_SITE_BYTES, usual="a site file is a few kB"
    )
    return loads_site(text, source=str(path))


def site_for(spec: str | None, protocol_site: Site | None = None) -> SiteCalendar:
    """A built-in site code or a site file path; default: the protocol site's built-in file.

    When the protocol names its site, the settings must agree with it (code, zone, country).
    """
    if spec is None:
        if protocol_site is None:
            raise VisitplanError("site", None, _("name a site code or a site file (--site)"))
        spec = protocol_site.code
    if spec in builtin_site_names():
        site = builtin_site(spec)
    elif spec.lower().endswith(".toml") or Path(spec).exists():
        site = load_site(spec)
    else:
        raise VisitplanError(
            "site",
            spec,
            _("is neither a built-in site ({items}) nor a site file").format(
                items=", ".join(builtin_site_names())
            ),
        )
    if protocol_site is not None and protocol_site.code == site.code:
        site.check_site(protocol_site)
    return site


def loads_site(text: str, *, source: str = "<site>") -> SiteCalendar:
    """Parse site-file TOML text into a :class:`SiteCalendar`."""
    # The protocol's parser: the same refusals of deep nesting, long numbers, NaN, infinities.
    raw = parse(text, source=source, fmt="toml")
    r = _SiteReader(source)
    site = r.site(raw)
    if r.errors or site is None:
        raise ProtocolErrors(r.errors or [ProtocolError("site", None, _("is required"), source)])
    return site


class _SiteReader(Reader):
    """The protocol file's reader (errors with field paths, tables) and a site file's fields."""

    def nonempty_text(
        self, raw: Mapping[str, Any], key: str, path: str, *, required: bool, plain: bool = True
    ) -> str | None:
        """Non-empty text; ``plain``: no control characters or line breaks either (a field
        with a pattern of its own, the code, says what it must be instead)."""
        value = raw.get(key)
        if value is None:
            if required:
                self.error(f"{path}.{key}", None, _("is required"))
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(f"{path}.{key}", value, _("must be non-empty text"))
            return None
        return (self.text(raw, key, path) or None) if plain else value

    def time(self, raw: Mapping[str, Any], key: str, default: pendulum.Time) -> pendulum.Time:
        value = raw.get(key)
        if value is None:
            return default
        parsed = wall_time(value)
        if parsed is None:
            self.error(f"clinic.{key}", value, _("must be a wall-clock time written HH:MM"))
            return default
        return pendulum.time(*parsed)

    def site(self, doc: Mapping[str, Any]) -> SiteCalendar | None:
        doc = self.table(doc, "", {"site", "clinic", "capacity", "closures"}, set())
        if "site" not in doc:
            self.error("site", None, _("is required (a [site] table)"))
            return None
        fields = {"code", "name", "timezone", "country", "subdivision", "policy", "language",
                  "excel_csv"}  # fmt: skip
        s = self.table(doc["site"], "site", fields, set())
        code = self.nonempty_text(s, "code", "site", required=True, plain=False)
        if code is not None and not SITE_CODE.match(code):
            self.error("site.code", code, _("must be 1-16 capitals, digits, '-' or '_'"))
        name = self.nonempty_text(s, "name", "site", required=False) or code or ""
        zone = self.nonempty_text(s, "timezone", "site", required=True)
        if zone is not None:
            try:
                pendulum.timezone(zone)
            except Exception:  # pendulum raises several types for an unknown zone
                self.error("site.timezone", zone, _("is not a known IANA time zone"))
        country = self.nonempty_text(s, "country", "site", required=True)
        subdivision = self.nonempty_text(s, "subdivision", "site", required=False)
        if country is not None:
            self._check_holidays(country, subdivision)
        policy = MovePolicy.NEAREST
        if "policy" in s:
            try:
                policy = MovePolicy(s["policy"])
            except ValueError:
                choices = ", ".join(p.value for p in MovePolicy)
                self.error(
                    "site.policy",
                    s["policy"],
                    _("must be one of: {choices}").format(choices=choices),
                )

        language = "en"
        if "language" in s:
            if s["language"] in i18n.LANGUAGES:
                language = s["language"]
            else:
                self.error(
                    "site.language",
                    s["language"],
                    _("must be one of: {choices}").format(choices=", ".join(i18n.LANGUAGES)),
                )

        excel_csv = s.get("excel_csv", False)
        if not isinstance(excel_csv, bool):
            self.error("site.excel_csv", excel_csv, _("must be true or false"))
            excel_csv = False

        c = self.table(doc.get("clinic", {}), "clinic", {"days", "opens", "closes"}, set())
        weekdays = self._weekdays(c.get("days", list(_WEEKDAYS[:5])))
        opens = self.time(c, "opens", _OPENS)
        closes = self.time(c, "closes", _CLOSES)
        if opens >= closes:
            self.error("clinic.closes", closes.strftime("%H:%M"), _("must be after clinic.opens"))

        capacity, daily_limit = self._capacity(doc.get("capacity", {}))
        closures = self._closures(doc.get("closures", []))
        if self.errors or code is None or zone is None or country is None:
            return None
        return SiteCalendar(
            code=code,
            name=name,
            timezone=zone,
            country=country,
            subdivision=subdivision,
            weekdays=weekdays,
            opens=opens,
            closes=closes,
            closures=closures,
            capacity=capacity,
            daily_limit=daily_limit,
            policy=policy,
            language=language,
            excel_csv=excel_csv,
        )

    def _check_holidays(self, country: str, subdivision: str | None) -> None:
        import holidays

        try:
            holidays.country_holidays(country, subdiv=subdivision)
        except NotImplementedError:
            if subdivision is None:
                self.error("site.country", country, _("has no public-holiday calendar"))
            else:
                self.error(
                    "site.subdivision",
                    subdivision,
                    _("is not a subdivision of {country}").format(country=country),
                )

    def _weekdays(self, raw: object) -> frozenset[int]:
        if not isinstance(raw, list) or not raw:
            self.error(
                "clinic.days",
                raw,
                _("must be a list of weekdays ({items})").format(items=", ".join(_WEEKDAYS)),
            )
            return frozenset()
        days: set[int] = set()
        for item in raw:
            if item not in _WEEKDAYS:
                self.error(
                    "clinic.days",
                    item,
                    _("must be one of: {items}").format(items=", ".join(_WEEKDAYS)),
                )
            else:
                days.add(_WEEKDAYS.index(item) + 1)
        return frozenset(days)

    def _capacity(self, raw: object) -> tuple[dict[VisitKind, int], int | None]:
        kinds = [k.value for k in VisitKind]
        table = self.table(raw, "capacity", {*kinds, "all"}, set())
        capacity: dict[VisitKind, int] = {}
        daily_limit: int | None = None
        for key, value in table.items():
            if key not in {*kinds, "all"}:
                continue  # already reported as an unknown field
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.error(
                    f"capacity.{key}", value, _("must be a whole number of visits, 0 or more")
                )
                continue
            if key == "all":
                daily_limit = value
            else:
                capacity[VisitKind(key)] = value
        return capacity, daily_limit

    def _closures(self, raw: object) -> tuple[Closure, ...]:
        if not isinstance(raw, list):
            self.error("closures", raw, _("must be a list of [[closures]] tables"))
            return ()
        out: list[Closure] = []
        for i, item in enumerate(raw):
            path = f"closures[{i}]"
            t = self.table(item, path, {"date", "from", "to", "reason"}, set())
            try:
                if "date" in t:
                    if "from" in t or "to" in t:
                        raise VisitplanError(
                            f"{path}.date", t["date"], _("give date, or from and to")
                        )
                    start = end = _toml_date(t["date"], f"{path}.date")
                else:
                    if "from" not in t or "to" not in t:
                        raise VisitplanError(path, None, _("needs a date, or both from and to"))
                    start = _toml_date(t["from"], f"{path}.from")
                    end = _toml_date(t["to"], f"{path}.to")
                    if end < start:
                        raise VisitplanError(
                            f"{path}.to",
                            end.isoformat(),
                            _("is before from ({start})").format(start=start),
                        )
            except VisitplanError as exc:
                self.error(exc.field, exc.value, exc.rule)
                continue
            reason = self.nonempty_text(t, "reason", path, required=False)
            out.append(Closure(start, end, reason) if reason else Closure(start, end))
        return tuple(out)


def _toml_date(value: object, field: str) -> pendulum.Date:
    import datetime as _dt

    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = value.isoformat()  # a bare TOML date, read by tomllib as datetime.date
    return parse_date(value, field)
