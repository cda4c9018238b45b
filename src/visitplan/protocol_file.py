"""Protocol files: read (TOML or JSON) into the model with strict validation, and write back.

A protocol file is meant to be read and reviewed by a person; see docs/protocol-files.md.
Validation collects every error it can find before raising, so ``visitplan protocol check``
reports them all at once.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from visitplan.dates import MAX_YEAR, MIN_YEAR
from visitplan.engine import MAX_OCCURRENCES, dependency_order
from visitplan.errors import ProtocolError, VisitplanError
from visitplan.fileio import read_text
from visitplan.model import (
    Anchor,
    AnchorKind,
    Dose,
    Epoch,
    MergeRule,
    Milestone,
    NotBefore,
    Offset,
    Procedure,
    ProcedureKind,
    Protocol,
    Repeat,
    Rules,
    Since,
    Site,
    Unit,
    Visit,
    VisitKind,
    Washout,
    Window,
)

T = TypeVar("T")

_OFFSET = re.compile(r"^\s*([+-]?\d+)\s*([A-Za-z]+)\s*\Z", re.ASCII)
# ``\Z`` rather than ``$``, which would also accept a code followed by a newline.
_VISIT_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}\Z")
_MILESTONE_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}\Z")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
_UNITS = {
    "day": Unit.DAYS,
    "days": Unit.DAYS,
    "week": Unit.WEEKS,
    "weeks": Unit.WEEKS,
    "month": Unit.MONTHS,
    "months": Unit.MONTHS,
}
_COUNTRY = re.compile(r"^[A-Z]{2}\Z")
#: The file formats :func:`load` reads, by suffix (YAML needs the optional PyYAML).
FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}
#: No offset can be longer than the supported calendar: from any date inside it, it would
#: leave it. Derived from the calendar's years, so it is not a protocol number.
_CALENDAR_YEARS = MAX_YEAR - MIN_YEAR + 1
_MAX_OFFSET = {
    Unit.DAYS: _CALENDAR_YEARS * 366,
    Unit.WEEKS: _CALENDAR_YEARS * 366 // 7,
    Unit.MONTHS: _CALENDAR_YEARS * 12,
}
#: Control characters (and lone surrogates, which cannot be written as UTF-8) in a text field.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: A protocol file is a few kilobytes; anything far larger is a wrong file, not a protocol.
MAX_FILE_BYTES = 4 * 1024 * 1024


class ProtocolErrors(ProtocolError):
    """Several protocol errors at once; ``errors`` lists each as a :class:`ProtocolError`."""

    def __init__(self, errors: list[ProtocolError]) -> None:
        self.errors = errors
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first.field, first.value, first.rule + more)
        self.args = (str(first) + more,)


class _Missing:
    """Shown as the value of a required field that is absent."""

    def __str__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


class _Reader:
    """Walks the raw document, converting and collecting errors with their field paths."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[ProtocolError] = []

    def error(self, path: str, value: object, rule: str) -> None:
        self.errors.append(ProtocolError(path, value, rule, self.source))

    def table(
        self, raw: object, path: str, allowed: set[str], required: set[str]
    ) -> dict[str, Any]:
        if raw is None:
            return {}  # an absent table: the parent reports it if it is required
        if not isinstance(raw, Mapping):
            self.error(path or "document", raw, "must be a table")
            return {}
        self.duplicates(raw, path)
        for key in raw:
            if key not in allowed:
                self.error(f"{path}.{key}" if path else key, raw[key], "unknown field")
        # A JSON null is no value: a required field given as null is missing.
        for key in sorted(required - {k for k, v in raw.items() if v is not None}):
            self.error(f"{path}.{key}" if path else key, _MISSING, "is required")
        return dict(raw)

    def duplicates(self, raw: Mapping[str, Any], path: str) -> None:
        for key in getattr(raw, "duplicate_keys", ()):
            self.error(f"{path}.{key}" if path else key, key, "duplicate key")

    def text(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        default: str | None = None,
        *,
        multiline: bool = False,
    ) -> str:
        value = raw.get(key, default)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.error(f"{path}.{key}", value, "must be text")
            return ""
        if _CONTROL.search(value) or (not multiline and ("\n" in value or "\t" in value)):
            self.error(f"{path}.{key}", value, "must not contain control characters or line breaks")
            return ""
        return value

    def enum(self, raw: Mapping[str, Any], key: str, path: str, kind: type[T], default: T) -> T:
        value = raw.get(key)
        if value is None:
            return default
        try:
            return kind(value)  # type: ignore[call-arg]
        except ValueError:
            choices = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
            self.error(f"{path}.{key}", value, f"must be one of: {choices}")
            return default

    def offset(self, raw: object, path: str, *, months: bool = True) -> Offset | None:
        if raw is None:
            return None
        m = _OFFSET.match(raw) if isinstance(raw, str) else None
        if not m:
            self.error(
                path, raw, "must be an amount and a unit, e.g. '3 days', '4 weeks', '5 months'"
            )
            return None
        unit = _UNITS.get(m.group(2).lower())
        if unit is None:
            self.error(path, raw, f"unknown unit {m.group(2)!r}; units: days, weeks, months")
            return None
        if unit is Unit.MONTHS and not months:
            self.error(path, raw, "must be in days or weeks: a calendar month has no fixed length")
            return None
        number = m.group(1)
        sign = "-" if number.startswith("-") else ""
        digits = number.lstrip("+-").lstrip("0") or "0"
        # Compare lengths first: Python's int() itself refuses strings of over 4300 digits.
        value = int(sign + digits) if len(digits) <= 12 else _MAX_OFFSET[unit] + 1
        if abs(value) > _MAX_OFFSET[unit]:
            self.error(
                path,
                raw,
                f"is longer than the {_CALENDAR_YEARS} years of the supported calendar "
                f"({MIN_YEAR}-{MAX_YEAR}); at most {_MAX_OFFSET[unit]} {unit.value}",
            )
            return None
        return Offset(value, unit)

    def anchor(self, raw: object, path: str) -> Anchor | None:
        if raw == "screening":
            return Anchor.screening()
        if raw == "last-dose":
            return Anchor.last_dose()
        if isinstance(raw, str) and _VISIT_CODE.match(raw):
            return Anchor.of_visit(raw)
        if raw is None:
            return None  # reported as a missing required field
        self.error(path, raw, "must be 'screening', 'last-dose' or a visit code")
        return None

    def code(self, raw: Mapping[str, Any], key: str, path: str) -> str | None:
        """An optional reference to a visit code (checked against the visits later)."""
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(f"{path}.{key}", value, "must be text (a visit code)")
            return None
        return value

    def name(self, raw: object, path: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not _NAME.match(raw):
            self.error(path, raw, "must be a lower-case name such as 'hbcab_positive'")
            return None
        return raw


class _Table(dict[str, Any]):
    """A JSON/YAML object that remembers the keys it saw twice (TOML refuses them itself)."""

    duplicate_keys: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _Table:
    table = _Table()
    dups: list[str] = []
    for key, value in pairs:
        if key in table:
            dups.append(key)
        table[key] = value
    table.duplicate_keys = tuple(dups)
    return table


def _parse_yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise VisitplanError(
            "protocol file", "YAML", "needs PyYAML: pip install 'visitplan[yaml]'"
        ) from None

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Table:
        pairs = [
            (loader.construct_object(k, deep=True), loader.construct_object(v, deep=True))
            for k, v in node.value
        ]
        return _json_object([(str(k), v) for k, v in pairs])

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=Loader)  # a SafeLoader subclass: plain data only
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ProtocolErrors(
            [ProtocolError("file", source, f"is not valid YAML: {detail}")]
        ) from None


def loads(text: str, *, source: str = "<protocol>", fmt: str = "toml") -> Protocol:
    """Parse a protocol from TOML, JSON or YAML text; raise :class:`ProtocolErrors` if invalid.

    JSON and YAML objects with a key given twice are refused (TOML refuses them itself).
    """
    if not isinstance(text, str):
        raise ProtocolError("file", type(text).__name__, "must be text (str)", source)
    raw: Any
    kind = fmt.upper()
    try:
        if fmt == "json":
            raw = json.loads(text, object_pairs_hook=_json_object, parse_constant=_no_constant)
        elif fmt == "yaml":
            raw = _parse_yaml(text, source)
        elif fmt == "toml":
            raw = tomllib.loads(text)
        else:
            raise VisitplanError("format", fmt, "must be one of: toml, json, yaml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, _JSONRefusal) as exc:
        raise ProtocolErrors(
            [ProtocolError("file", source, f"is not valid {kind}: {exc}")]
        ) from None
    except RecursionError:
        raise ProtocolErrors(
            [ProtocolError("file", source, f"is not valid {kind}: nested too deeply")]
        ) from None
    except ValueError:  # int() refuses numbers of more than 4300 digits
        raise ProtocolErrors(
            [ProtocolError("file", source, f"is not valid {kind}: a number is too long")]
        ) from None
    if not text.strip():
        raise ProtocolErrors([ProtocolError("file", source, "is empty")])
    bad = _bad_text(raw)
    if bad is not None:
        raise ProtocolErrors(
            [ProtocolError("file", source, f"holds text that is not valid Unicode: {bad!r}")]
        )
    return from_dict(raw, source=source)


class _JSONRefusal(ValueError):
    """JSON that parses but cannot be a protocol: duplicate keys, NaN or Infinity."""


def _no_constant(name: str) -> Any:
    raise _JSONRefusal(f"{name} is not a number")


def _bad_text(raw: object) -> str | None:
    """The first key or string holding a lone surrogate (JSON's "\\ud800"), else None."""
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if re.search("[\ud800-\udfff]", item):
                return item
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def load(path: str | Path) -> Protocol:
    """Read a protocol file (``.toml``, ``.json``, or ``.yaml``/``.yml`` with PyYAML)."""
    path = Path(path)
    if path.is_dir():
        raise VisitplanError("protocol file", str(path), "is a folder, not a protocol file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VisitplanError(
            "protocol file", str(path), f"must end in one of: {', '.join(FORMATS)}"
        )
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        raise VisitplanError(
            "protocol file",
            str(path),
            f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; a protocol is a few kB",
        )
    text = read_text(path, "protocol file")
    return loads(text, source=str(path), fmt=fmt)


def builtin_names() -> list[str]:
    """The protocols shipped with visitplan."""
    folder = resources.files("visitplan") / "protocols"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def builtin(name: str = "NCT05124925") -> Protocol:
    """A protocol shipped with visitplan, loaded through the same path as any protocol file."""
    if name not in builtin_names():
        raise VisitplanError(
            "protocol", name, f"is not built in; built in: {', '.join(builtin_names())}"
        )
    text = (resources.files("visitplan") / "protocols" / f"{name}.toml").read_text(encoding="utf-8")
    return loads(text, source=f"builtin:{name}")


def from_dict(raw: object, *, source: str = "<protocol>") -> Protocol:
    """Build a protocol from an already-parsed document (the TOML/JSON structure)."""
    r = _Reader(source)
    if not isinstance(raw, Mapping):
        r.error("(document)", raw, "must be a table of [study], [[epochs]], [[visits]], ...")
        raise ProtocolErrors(r.errors)
    doc = r.table(
        raw,
        "",
        {"study", "sites", "rules", "epochs", "procedures", "visits", "milestones", "washouts"},
        {"study", "epochs", "visits"},
    )
    study = r.table(
        doc.get("study"),
        "study",
        {"id", "title", "sponsor_id", "day1_visit", "screening_visit", "description"},
        {"id", "title", "day1_visit"},
    )
    epochs = _list(r, doc.get("epochs", []), "epochs", lambda e, p: _epoch(r, e, p))
    sites = _list(r, doc.get("sites", []), "sites", lambda s, p: _site(r, s, p))
    procedures = _procedures(r, doc.get("procedures", {}))
    rules_raw = r.table(
        doc.get("rules"),
        "rules",
        {"min_dose_gap", "early_end_visit", "recovery_event"},
        set(),
    )
    rules = Rules(
        # A minimum gap between doses is a pharmacological interval: a fixed number of days.
        min_dose_gap=r.offset(rules_raw.get("min_dose_gap"), "rules.min_dose_gap", months=False),
        early_end_visit=r.code(rules_raw, "early_end_visit", "rules"),
        recovery_event=r.name(rules_raw.get("recovery_event"), "rules.recovery_event"),
    )
    visits = _list(r, doc.get("visits", []), "visits", lambda v, p: _visit(r, v, p, procedures))
    milestones = _list(r, doc.get("milestones", []), "milestones", lambda m, p: _milestone(r, m, p))
    washouts = _list(r, doc.get("washouts", []), "washouts", lambda w, p: _washout(r, w, p))

    _check_unique(r, [e.code for e in epochs], "epochs", "epoch code")
    _check_unique(r, [s.code for s in sites], "sites", "site code")
    _check_unique(r, [v.code for v in visits], "visits", "visit code")
    day1 = r.code(study, "day1_visit", "study")
    screening_visit = r.code(study, "screening_visit", "study")
    _check_references(r, visits, epochs, rules, day1, screening_visit, doc.get("visits") == [])
    _check_events_and_washouts(r, visits, milestones, washouts)
    protocol = Protocol(
        id=r.text(study, "id", "study"),
        title=r.text(study, "title", "study"),
        sponsor_id=r.text(study, "sponsor_id", "study"),
        day1_visit=day1 or "",
        description=r.text(study, "description", "study", multiline=True),
        screening_visit=screening_visit,
        epochs=tuple(epochs),
        visits=tuple(visits),
        sites=tuple(sites),
        rules=rules,
        milestones=tuple(milestones),
        washouts=tuple(washouts),
    )
    if not r.errors:
        try:
            dependency_order(protocol)  # the engine's own check, as a safety net
        except ProtocolError as exc:
            r.error(exc.field, exc.value, exc.rule)
    if r.errors:
        raise ProtocolErrors(r.errors)
    return protocol


def _check_references(
    r: _Reader,
    visits: list[Visit],
    epochs: list[Epoch],
    rules: Rules,
    day1: str | None,
    screening_visit: str | None,
    no_visits: bool,
) -> None:
    """Cross-references: epochs, anchors, cycles, and what the engine needs of Day 1."""
    by_code = {v.code: v for v in visits if v.code}
    epoch_codes = {e.code for e in epochs}
    for v in visits:
        if v.epoch and v.epoch not in epoch_codes:
            r.error(
                f"visits.{v.code}.epoch",
                v.epoch,
                f"unknown epoch; defined: {', '.join(sorted(epoch_codes))}",
            )
        for a, where in (
            (v.anchor, "anchor"),
            (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
        ):
            if a is None or a.kind is not AnchorKind.VISIT:
                continue
            target = by_code.get(a.visit or "")
            if target is None:
                r.error(f"visits.{v.code}.{where}", a.visit, "unknown visit")
            elif target is v:
                r.error(f"visits.{v.code}.{where}", a.visit, "a visit cannot anchor on itself")
            elif target.repeat:
                r.error(f"visits.{v.code}.{where}", a.visit, "cannot anchor on a repeating visit")
            elif target.condition and target.condition != v.condition:
                r.error(
                    f"visits.{v.code}.{where}",
                    a.visit,
                    f"anchors on a visit that only applies when flagged {target.condition}; "
                    f"give this visit condition = {target.condition!r} too",
                )
        stop = v.repeat.stop_visit if v.repeat else None
        if stop is not None:
            target = by_code.get(stop)
            path = f"visits.{v.code}.repeat.stop_visit"
            if target is None:
                r.error(path, stop, "unknown visit")
            elif target.repeat:
                r.error(path, stop, "cannot stop at a repeating visit")
            elif target.condition and target.condition != v.condition:
                r.error(path, stop, f"only applies when flagged {target.condition}")
        if v.repeat:
            for other in visits:
                rest = other.code[len(v.code) :]
                if other is not v and other.code.startswith(v.code) and rest.isdigit():
                    # FU repeating makes FU1, FU2, ...: a visit FU1 (or a repeat FU1 making
                    # FU12) would share a code with an occurrence; records could not tell.
                    r.error(
                        f"visits.{other.code}.code",
                        other.code,
                        f"clashes with the occurrence codes of the repeating visit {v.code}",
                    )
    if day1 is not None and by_code and day1 not in by_code:
        r.error("study.day1_visit", day1, "unknown visit")
    elif day1 is not None and day1 in by_code:
        d1 = by_code[day1]
        if d1.repeat or d1.condition or d1.wait_for:
            r.error(
                "study.day1_visit",
                day1,
                "Day 1 must be a single visit that applies to every participant "
                "(no repeat, condition or wait_for)",
            )
    if screening_visit is not None and screening_visit not in by_code:
        r.error("study.screening_visit", screening_visit, "unknown visit")
    elif screening_visit is not None:
        sv = by_code[screening_visit]
        if sv.anchor.kind is not AnchorKind.SCREENING or sv.offset.value or sv.repeat:
            # The engine records this visit as done on the screening date itself.
            r.error(
                "study.screening_visit",
                screening_visit,
                "the screening visit happens on the screening date: "
                "anchor = 'screening', offset = '0 days', no repeat",
            )
    if rules.early_end_visit is not None and rules.early_end_visit not in by_code:
        r.error("rules.early_end_visit", rules.early_end_visit, "unknown visit")
    elif rules.early_end_visit is not None and by_code[rules.early_end_visit].repeat:
        r.error(
            "rules.early_end_visit", rules.early_end_visit, "must be a visit that does not repeat"
        )
    if no_visits:
        r.error("visits", [], "a protocol needs at least one visit")
    if not any(v.is_dosing for v in visits):
        for v in visits:
            for a, where in (
                (v.anchor, "anchor"),
                (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
            ):
                if a is not None and a.kind is AnchorKind.LAST_DOSE:
                    r.error(
                        f"visits.{v.code}.{where}",
                        "last-dose",
                        "no visit gives a dose (a procedure with a dose)",
                    )
    _check_cycles(r, visits, by_code)


def _check_cycles(r: _Reader, visits: list[Visit], by_code: Mapping[str, Visit]) -> None:
    """Report an anchor cycle with its path, e.g. ``A -> B -> A`` (unknown anchors aside)."""
    last_dose = "last-dose"
    edges: dict[str, list[tuple[str, str]]] = {
        last_dose: [(v.code, "dose") for v in visits if v.is_dosing]
    }
    for v in visits:
        out: list[tuple[str, str]] = []
        for a, where in (
            (v.anchor, "anchor"),
            (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
        ):
            if a is not None and a.kind is AnchorKind.VISIT:
                if a.visit is not None and a.visit in by_code and a.visit != v.code:
                    out.append((a.visit, where))
            elif a is not None and a.kind is AnchorKind.LAST_DOSE:
                out.append((last_dose, where))
        stop = v.repeat.stop_visit if v.repeat else None
        if stop is not None and stop in by_code and stop != v.code:
            out.append((stop, "repeat.stop_visit"))
        edges[v.code] = out
    # Depth-first search; the first back edge found closes a cycle, reported once.
    state: dict[str, int] = {}
    stack: list[tuple[str, str]] = []

    def visit(node: str) -> bool:
        state[node] = 1
        for nxt, where in edges.get(node, []):
            stack.append((node, where))
            if state.get(nxt) == 1:
                loop = stack[[n for n, _ in stack].index(nxt) :]
                # Start the report at a visit (not at the last dose) for a field path.
                # (A visit mis-coded "last-dose" can close a loop of last-dose nodes alone.)
                k = next((i for i, (n, _) in enumerate(loop) if n != last_dose), 0)
                loop = loop[k:] + loop[:k]
                names = [n for n, _ in loop]
                (first, field), to = loop[0], (names[1] if len(names) > 1 else names[0])
                r.error(
                    f"visits.{first}.{field}",
                    to,
                    f"anchors form a cycle: {' -> '.join([*names, names[0]])}",
                )
                return True
            if state.get(nxt) is None and visit(nxt):
                return True
            stack.pop()
        state[node] = 2
        return False

    for v in visits:
        if state.get(v.code) is None:
            stack.clear()
            if visit(v.code):
                return


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int too large for a float
        return False


def _list(r: _Reader, raw: object, path: str, item: Callable[[Any, str], T | None]) -> list[T]:
    if not isinstance(raw, list):
        r.error(path, raw, "must be a list (an array of tables)")
        return []
    out = []
    for i, element in enumerate(raw):
        if element is None:
            r.error(f"{path}[{i}]", element, "must be a table")
            continue
        label = element.get("code") if isinstance(element, Mapping) else None
        made = item(
            element, f"{path}.{label}" if isinstance(label, str) and label else f"{path}[{i}]"
        )
        if made is not None:
            out.append(made)
    return out


def _check_unique(r: _Reader, codes: list[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for c in codes:
        if not c:
            continue  # a missing code is reported as a missing field
        if c in seen:
            r.error(f"{path}.{c}", c, f"duplicate {what}")
        seen.add(c)


def _epoch(r: _Reader, raw: object, path: str) -> Epoch | None:
    e = r.table(raw, path, {"code", "name"}, {"code", "name"})
    return Epoch(r.text(e, "code", path), r.text(e, "name", path)) if e else None


def _site(r: _Reader, raw: object, path: str) -> Site | None:
    s = r.table(
        raw,
        path,
        {"code", "name", "timezone", "country", "subdivision", "bcell_lln", "bcell_unit"},
        {"code", "name", "timezone", "country"},
    )
    if not s:
        return None
    zone = r.text(s, "timezone", path)
    if zone or s.get("timezone") == "":
        import pendulum

        try:
            pendulum.timezone(zone)
        except Exception:  # pendulum raises several types for an unknown zone
            r.error(f"{path}.timezone", zone, "unknown IANA time zone (e.g. 'Europe/Paris')")
    country = r.text(s, "country", path)
    if country and not _COUNTRY.match(country):
        r.error(f"{path}.country", country, "must be an ISO 3166 two-letter code such as 'FR'")
    return Site(
        code=r.text(s, "code", path),
        name=r.text(s, "name", path),
        timezone=zone,
        country=country,
        subdivision=r.text(s, "subdivision", path) or None,
        **_bcell_limit(r, s, path),
    )


def _bcell_limit(r: _Reader, s: Mapping[str, Any], path: str) -> dict[str, Any]:
    if "bcell_lln" not in s:
        if "bcell_unit" in s:
            r.error(f"{path}.bcell_unit", s["bcell_unit"], "is given without a bcell_lln")
        return {}
    lln = s["bcell_lln"]
    if not isinstance(lln, int | float) or isinstance(lln, bool) or lln <= 0:
        r.error(f"{path}.bcell_lln", lln, "must be a positive number (the lab's lower limit)")
        return {}
    unit = r.text(s, "bcell_unit", path)
    if not unit:
        r.error(f"{path}.bcell_unit", None, "is required with bcell_lln (e.g. 'cells/uL')")
    return {"bcell_lln": float(lln), "bcell_unit": unit}


def _milestone(r: _Reader, raw: object, path: str) -> Milestone | None:
    m = r.table(
        raw,
        path,
        {"code", "name", "anchor", "offset", "condition"},
        {"code", "name", "anchor", "offset"},
    )
    if not m:
        return None
    code = r.text(m, "code", path)
    if code and not _MILESTONE_CODE.match(code):
        r.error(
            f"{path}.code",
            code,
            "milestone codes are 1-32 upper-case letters, digits and '_', starting with a letter",
        )
    anchor = r.anchor(m.get("anchor"), f"{path}.anchor")
    offset = r.offset(m.get("offset"), f"{path}.offset")
    if anchor is None or offset is None:
        return None
    return Milestone(
        code=code,
        name=r.text(m, "name", path),
        anchor=anchor,
        offset=offset,
        condition=r.name(m.get("condition"), f"{path}.condition"),
    )


def _washout(r: _Reader, raw: object, path: str) -> Washout | None:
    w = r.table(
        raw,
        path,
        {"code", "name", "interval", "half_lives", "anchor", "binds", "since", "requirement"},
        {"code", "name", "interval", "anchor", "binds"},
    )
    if not w:
        return None
    code = r.name(w.get("code"), f"{path}.code") or ""
    interval = r.offset(w.get("interval"), f"{path}.interval")
    if interval is not None and interval.value < 0:
        r.error(f"{path}.interval", str(interval), "cannot be negative")
    half_lives = w.get("half_lives")
    if half_lives is not None and (
        not isinstance(half_lives, int) or isinstance(half_lives, bool) or half_lives < 1
    ):
        r.error(f"{path}.half_lives", half_lives, "must be a whole number of at least 1")
        half_lives = None
    since_raw = w.get("since", ["last-dose"])
    since: list[Since] = []
    if not isinstance(since_raw, list) or not since_raw:
        r.error(f"{path}.since", since_raw, "must be a list of 'last-dose' and/or 'last-change'")
    else:
        for item in since_raw:
            try:
                since.append(Since(item))
            except ValueError:
                r.error(f"{path}.since", item, "must be 'last-dose' or 'last-change'")
    binds = r.text(w, "binds", path)
    if binds and not _VISIT_CODE.match(binds):
        r.error(f"{path}.binds", binds, "must be a visit code (e.g. 'D1' or 'SCR')")
    if interval is None:
        return None
    return Washout(
        code=code,
        name=r.text(w, "name", path),
        interval=interval,
        anchor=r.text(w, "anchor", path),
        binds=binds,
        since=tuple(since) or (Since.LAST_DOSE,),
        half_lives=half_lives,
        requirement=r.text(w, "requirement", path),
    )


def _check_events_and_washouts(
    r: _Reader, visits: list[Visit], milestones: list[Milestone], washouts: list[Washout]
) -> None:
    once = {v.code for v in visits if v.repeat is None}
    every = {v.code for v in visits if v.repeat is not None}
    _check_unique(r, [m.code for m in milestones], "milestones", "milestone code")
    _check_unique(r, [w.code for w in washouts], "washouts", "washout code")
    for m in milestones:
        a = m.anchor
        if a.kind is AnchorKind.VISIT and a.visit not in once:
            rule = "cannot anchor on a repeating visit" if a.visit in every else "unknown visit"
            r.error(f"milestones.{m.code}.anchor", a.visit, rule)
    for w in washouts:
        if w.binds and w.binds not in once:
            rule = "cannot bind a repeating visit" if w.binds in every else "unknown visit"
            r.error(f"washouts.{w.code}.binds", w.binds, rule)


def _procedures(r: _Reader, raw: object) -> dict[str, Procedure]:
    if not isinstance(raw, Mapping):
        r.error("procedures", raw, "must be a table of procedures by code")
        return {}
    r.duplicates(raw, "procedures")
    out: dict[str, Procedure] = {}
    for code, body in raw.items():
        path = f"procedures.{code}"
        if not _VISIT_CODE.match(code):
            r.error(path, code, "procedure codes are upper-case letters, digits and '_'")
        p = r.table(body, path, {"name", "kind", "condition", "dose"}, {"name"})
        if not p:
            continue
        dose = None
        if "dose" in p:
            d = r.table(
                p["dose"],
                f"{path}.dose",
                {"drug", "amount", "unit", "route", "injections", "presentation"},
                {"drug", "amount"},
            )
            amount, injections = d.get("amount"), d.get("injections", 1)
            if (
                not isinstance(amount, int | float)
                or isinstance(amount, bool)
                or not _finite(amount)
                or amount <= 0
            ):
                r.error(f"{path}.dose.amount", amount, "must be a positive number")
                amount = 0
            if not isinstance(injections, int) or isinstance(injections, bool) or injections < 1:
                r.error(
                    f"{path}.dose.injections", injections, "must be a whole number of at least 1"
                )
                injections = 1
            dose = Dose(
                drug=r.text(d, "drug", f"{path}.dose"),
                amount=float(amount),
                unit=r.text(d, "unit", f"{path}.dose", "mg"),
                route=r.text(d, "route", f"{path}.dose", "s.c."),
                injections=injections,
                presentation=r.text(d, "presentation", f"{path}.dose"),
            )
        kind = r.enum(
            p, "kind", path, ProcedureKind, ProcedureKind.DOSE if dose else ProcedureKind.OTHER
        )
        out[code] = Procedure(
            code,
            r.text(p, "name", path),
            kind,
            r.name(p.get("condition"), f"{path}.condition"),
            dose,
        )
    return out


_VISIT_FIELDS = {
    "code",
    "name",
    "kind",
    "epoch",
    "anchor",
    "offset",
    "window",
    "procedures",
    "repeat",
    "condition",
    "wait_for",
    "not_before",
    "merge",
}


def _visit(r: _Reader, raw: object, path: str, procedures: Mapping[str, Procedure]) -> Visit | None:
    v = r.table(raw, path, _VISIT_FIELDS, {"code", "name", "kind", "epoch", "anchor"})
    if not v:
        return None
    code = r.text(v, "code", path)
    if code and not _VISIT_CODE.match(code):
        r.error(
            f"{path}.code",
            code,
            "visit codes are 1-16 upper-case letters, digits and '_', starting with a letter",
        )
    window = Window()
    if "window" in v:
        w = r.table(v["window"], f"{path}.window", {"before", "after", "strict"}, set())
        before = r.offset(w.get("before", "0 days"), f"{path}.window.before") or Offset(0)
        after = r.offset(w.get("after", "0 days"), f"{path}.window.after") or Offset(0)
        for side, o in (("before", before), ("after", after)):
            if o.value < 0:
                r.error(f"{path}.window.{side}", str(o), "a window bound cannot be negative")
        strict = w.get("strict", False)
        if not isinstance(strict, bool):
            r.error(f"{path}.window.strict", strict, "must be true or false")
            strict = False
        window = Window(before, after, strict)
    repeat = None
    if "repeat" in v:
        rp = r.table(
            v["repeat"],
            f"{path}.repeat",
            {"every", "count", "until", "stop_event", "stop_visit"},
            {"every"},
        )
        every_or_none = r.offset(rp.get("every"), f"{path}.repeat.every")
        if every_or_none is not None and every_or_none.value <= 0:
            r.error(f"{path}.repeat.every", str(every_or_none), "must be a positive interval")
        count = rp.get("count")
        if count is not None and (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 1 <= count <= MAX_OCCURRENCES
        ):
            r.error(
                f"{path}.repeat.count", count, f"must be a whole number from 1 to {MAX_OCCURRENCES}"
            )
            count = None
        until = r.offset(rp.get("until"), f"{path}.repeat.until")
        if "count" not in rp and "until" not in rp:
            r.error(f"{path}.repeat", dict(rp), "needs a 'count' or an 'until' so that it ends")
        repeat = Repeat(
            every=every_or_none or Offset(1),
            count=count,
            until=until,
            stop_event=r.name(rp.get("stop_event"), f"{path}.repeat.stop_event"),
            stop_visit=r.code(rp, "stop_visit", f"{path}.repeat"),
        )
    not_before = None
    if "not_before" in v:
        nb = r.table(
            v["not_before"], f"{path}.not_before", {"anchor", "offset"}, {"anchor", "offset"}
        )
        nb_anchor = r.anchor(nb.get("anchor"), f"{path}.not_before.anchor")
        nb_offset = r.offset(nb.get("offset"), f"{path}.not_before.offset")
        if nb_anchor and nb_offset:
            not_before = NotBefore(nb_anchor, nb_offset)
    procs: list[Procedure] = []
    listed = v.get("procedures", [])
    if not isinstance(listed, list):
        r.error(f"{path}.procedures", listed, "must be a list of procedure codes")
        listed = []
    for pc in listed:
        if not isinstance(pc, str):
            r.error(f"{path}.procedures", pc, "must be a procedure code (text)")
        elif pc not in procedures:
            r.error(f"{path}.procedures", pc, "unknown procedure; define it under [procedures]")
        elif procedures[pc] in procs:
            r.error(f"{path}.procedures", pc, "duplicate procedure: listed twice for this visit")
        else:
            procs.append(procedures[pc])
    anchor = r.anchor(v.get("anchor"), f"{path}.anchor") or Anchor.screening()
    return Visit(
        code=code,
        name=r.text(v, "name", path),
        kind=r.enum(v, "kind", path, VisitKind, VisitKind.ASSESSMENT),
        epoch=r.text(v, "epoch", path),
        anchor=anchor,
        offset=r.offset(v.get("offset", "0 days"), f"{path}.offset") or Offset(0),
        window=window,
        procedures=tuple(procs),
        repeat=repeat,
        condition=r.name(v.get("condition"), f"{path}.condition"),
        wait_for=r.name(v.get("wait_for"), f"{path}.wait_for"),
        not_before=not_before,
        merge=r.enum(v, "merge", path, MergeRule, None),
    )


# -- writing ------------------------------------------------------------------------------------
def to_dict(protocol: Protocol) -> dict[str, Any]:
    """The protocol as the plain structure of a protocol file (inverse of :func:`from_dict`)."""
    study: dict[str, Any] = {"id": protocol.id, "title": protocol.title}
    if protocol.sponsor_id:
        study["sponsor_id"] = protocol.sponsor_id
    study["day1_visit"] = protocol.day1_visit
    if protocol.screening_visit:
        study["screening_visit"] = protocol.screening_visit
    if protocol.description:
        study["description"] = protocol.description
    doc: dict[str, Any] = {"study": study}
    if protocol.sites:
        doc["sites"] = [
            {
                k: v
                for k, v in (
                    ("code", s.code),
                    ("name", s.name),
                    ("timezone", s.timezone),
                    ("country", s.country),
                    ("subdivision", s.subdivision),
                    ("bcell_lln", _number(s.bcell_lln)),
                    ("bcell_unit", s.bcell_unit),
                )
                if v
            }
            for s in protocol.sites
        ]
    rules: dict[str, Any] = {}
    if protocol.rules.min_dose_gap:
        rules["min_dose_gap"] = _offset(protocol.rules.min_dose_gap)
    if protocol.rules.early_end_visit:
        rules["early_end_visit"] = protocol.rules.early_end_visit
    if protocol.rules.recovery_event:
        rules["recovery_event"] = protocol.rules.recovery_event
    if rules:
        doc["rules"] = rules
    doc["epochs"] = [{"code": e.code, "name": e.name} for e in protocol.epochs]
    procs: dict[str, Any] = {}
    for v in protocol.visits:
        for p in v.procedures:
            entry: dict[str, Any] = {"name": p.name, "kind": p.kind.value}
            if p.condition:
                entry["condition"] = p.condition
            if p.dose:
                d = p.dose
                entry["dose"] = {
                    "drug": d.drug,
                    "amount": int(d.amount) if d.amount.is_integer() else d.amount,
                    "unit": d.unit,
                    "route": d.route,
                    "injections": d.injections,
                }
                if d.presentation:
                    entry["dose"]["presentation"] = d.presentation
            procs[p.code] = entry
    doc["procedures"] = procs
    doc["visits"] = [_visit_dict(v) for v in protocol.visits]
    if protocol.milestones:
        doc["milestones"] = [_milestone_dict(m) for m in protocol.milestones]
    if protocol.washouts:
        doc["washouts"] = [_washout_dict(w) for w in protocol.washouts]
    return doc


def _number(x: float | None) -> int | float | None:
    return int(x) if x is not None and x.is_integer() else x


def _milestone_dict(m: Milestone) -> dict[str, Any]:
    d: dict[str, Any] = {
        "code": m.code,
        "name": m.name,
        "anchor": _anchor(m.anchor),
        "offset": _offset(m.offset),
    }
    if m.condition:
        d["condition"] = m.condition
    return d


def _washout_dict(w: Washout) -> dict[str, Any]:
    d: dict[str, Any] = {
        "code": w.code,
        "name": w.name,
        "interval": _offset(w.interval),
        "anchor": w.anchor,
        "binds": w.binds,
        "since": [e.value for e in w.since],
    }
    if w.half_lives is not None:
        d["half_lives"] = w.half_lives
    if w.requirement:
        d["requirement"] = w.requirement
    return d


def dumps(protocol: Protocol, *, fmt: str = "toml") -> str:
    """The protocol as TOML (or JSON, YAML) text that :func:`loads` reads back to an equal one."""
    doc = to_dict(protocol)
    if fmt == "toml":
        import tomli_w

        return tomli_w.dumps(doc)
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:
            raise VisitplanError(
                "format", "yaml", "needs PyYAML: pip install 'visitplan[yaml]'"
            ) from None
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    raise VisitplanError("format", fmt, "must be one of: toml, json, yaml")


def _offset(o: Offset) -> str:
    return f"{o.value} {o.unit.value}"


def _anchor(a: Anchor) -> str:
    return {AnchorKind.SCREENING: "screening", AnchorKind.LAST_DOSE: "last-dose"}.get(
        a.kind
    ) or str(a.visit)


def _visit_dict(v: Visit) -> dict[str, Any]:
    d: dict[str, Any] = {
        "code": v.code,
        "name": v.name,
        "kind": v.kind.value,
        "epoch": v.epoch,
        "anchor": _anchor(v.anchor),
        "offset": _offset(v.offset),
    }
    if v.window != Window():
        d["window"] = {"before": _offset(v.window.before), "after": _offset(v.window.after)}
        if v.window.strict:
            d["window"]["strict"] = True
    if v.repeat:
        rp: dict[str, Any] = {"every": _offset(v.repeat.every)}
        if v.repeat.count is not None:
            rp["count"] = v.repeat.count
        if v.repeat.until is not None:
            rp["until"] = _offset(v.repeat.until)
        if v.repeat.stop_event:
            rp["stop_event"] = v.repeat.stop_event
        if v.repeat.stop_visit:
            rp["stop_visit"] = v.repeat.stop_visit
        d["repeat"] = rp
    if v.condition:
        d["condition"] = v.condition
    if v.wait_for:
        d["wait_for"] = v.wait_for
    if v.merge:
        d["merge"] = v.merge.value
    if v.not_before:
        d["not_before"] = {
            "anchor": _anchor(v.not_before.anchor),
            "offset": _offset(v.not_before.offset),
        }
    d["procedures"] = [p.code for p in v.procedures]
    return d
