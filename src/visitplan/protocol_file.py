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
from visitplan.model import (
    Anchor,
    AnchorKind,
    Dose,
    Epoch,
    NotBefore,
    Offset,
    Procedure,
    ProcedureKind,
    Protocol,
    Repeat,
    Rules,
    Site,
    Unit,
    Visit,
    VisitKind,
    Window,
)

T = TypeVar("T")

_OFFSET = re.compile(r"^\s*([+-]?)(\d+)\s*(day|days|week|weeks|month|months)\s*\Z", re.ASCII)
# ``\Z`` rather than ``$``, which would also accept a code followed by a newline.
_VISIT_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}\Z")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
_UNITS = {"day": Unit.DAYS, "week": Unit.WEEKS, "month": Unit.MONTHS}
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
        if not isinstance(raw, Mapping):
            self.error(path or "document", raw, "must be a table")
            return {}
        for key in raw:
            if key not in allowed:
                self.error(f"{path}.{key}" if path else key, raw[key], "unknown field")
        # A JSON null is no value: a required field given as null is missing.
        for key in sorted(required - {k for k, v in raw.items() if v is not None}):
            self.error(f"{path}.{key}" if path else key, None, "is required")
        return dict(raw)

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

    def code(self, raw: object, path: str) -> str | None:
        """An optional reference to a visit code (validated against the visits later)."""
        if raw is None:
            return None
        if not isinstance(raw, str) or not _VISIT_CODE.match(raw):
            self.error(path, raw, "must be a visit code")
            return None
        return raw

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
        unit = _UNITS[m.group(3).rstrip("s")]
        if unit is Unit.MONTHS and not months:
            self.error(path, raw, "must be in days or weeks (months have no fixed length here)")
            return None
        digits = m.group(2).lstrip("0") or "0"
        # Compare lengths first: Python's int() itself refuses strings of over 4300 digits.
        value = int(m.group(1) + digits) if len(digits) <= 12 else _MAX_OFFSET[unit] + 1
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
        self.error(path, raw, "must be 'screening', 'last-dose' or a visit code")
        return None

    def name(self, raw: object, path: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not _NAME.match(raw):
            self.error(path, raw, "must be a lower-case name such as 'hbcab_positive'")
            return None
        return raw


def loads(text: str, *, source: str = "<protocol>", fmt: str = "toml") -> Protocol:
    """Parse a protocol from TOML (or JSON) text; raise :class:`ProtocolErrors` if invalid."""
    if not isinstance(text, str):
        raise ProtocolError("file", type(text).__name__, "must be text (str)", source)
    kind = fmt.upper()
    try:
        if fmt == "json":
            raw = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        else:
            raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("file", source, f"is not valid {kind}: {exc}") from None
    except _JSONRefusal as exc:
        raise ProtocolError("file", source, f"is not valid {kind}: {exc}") from None
    except RecursionError:
        raise ProtocolError("file", source, f"is not valid {kind}: nested too deeply") from None
    except ValueError:  # int() refuses numbers of more than 4300 digits
        raise ProtocolError("file", source, f"is not valid {kind}: a number is too long") from None
    if not raw:
        raise ProtocolError("file", source, "is empty")
    bad = _bad_text(raw)
    if bad is not None:
        raise ProtocolError("file", source, f"holds text that is not valid Unicode: {bad!r}")
    return from_dict(raw, source=source)


class _JSONRefusal(ValueError):
    """JSON that parses but cannot be a protocol: duplicate keys, NaN or Infinity."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a reviewer reading the file sees the first.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _JSONRefusal(f"duplicate key {key!r}")
        out[key] = value
    return out


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
    """Read a protocol file (``.toml`` or ``.json``)."""
    path = Path(path)
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise VisitplanError(
                "protocol file",
                str(path),
                f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; a protocol is a few kB",
            )
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is fine
    except FileNotFoundError:
        raise VisitplanError("protocol file", str(path), "does not exist") from None
    except UnicodeDecodeError:
        raise VisitplanError("protocol file", str(path), "must be UTF-8 text") from None
    except OSError as exc:
        raise VisitplanError(
            "protocol file", str(path), f"cannot be read: {exc.strerror}"
        ) from None
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
    doc = r.table(
        raw,
        "",
        {"study", "sites", "rules", "epochs", "procedures", "visits"},
        {"study", "epochs", "visits"},
    )
    study = r.table(
        doc.get("study", {}),
        "study",
        {"id", "title", "sponsor_id", "day1_visit", "screening_visit", "description"},
        {"id", "title", "day1_visit"},
    )
    epochs = _list(r, doc.get("epochs", []), "epochs", lambda e, p: _epoch(r, e, p))
    sites = _list(r, doc.get("sites", []), "sites", lambda s, p: _site(r, s, p))
    procedures = _procedures(r, doc.get("procedures", {}))
    rules_raw = r.table(doc.get("rules", {}), "rules", {"min_dose_gap", "early_end_visit"}, set())
    rules = Rules(
        min_dose_gap=r.offset(rules_raw.get("min_dose_gap"), "rules.min_dose_gap"),
        early_end_visit=r.code(rules_raw.get("early_end_visit"), "rules.early_end_visit"),
    )
    visits = _list(r, doc.get("visits", []), "visits", lambda v, p: _visit(r, v, p, procedures))

    _check_unique(r, [e.code for e in epochs], "epochs", "epoch code")
    _check_unique(r, [s.code for s in sites], "sites", "site code")
    _check_unique(r, [v.code for v in visits], "visits", "visit code")
    codes = {v.code for v in visits}
    epoch_codes = {e.code for e in epochs}
    for v in visits:
        if v.epoch not in epoch_codes:
            r.error(
                f"visits.{v.code}.epoch",
                v.epoch,
                f"unknown epoch; defined: {', '.join(sorted(epoch_codes))}",
            )
        for a, where in (
            (v.anchor, "anchor"),
            (v.not_before.anchor if v.not_before else None, "not_before.anchor"),
        ):
            if a is not None and a.kind is AnchorKind.VISIT:
                if a.visit not in codes:
                    r.error(f"visits.{v.code}.{where}", a.visit, "unknown visit")
                elif a.visit == v.code:
                    r.error(f"visits.{v.code}.{where}", a.visit, "a visit cannot anchor on itself")
                elif any(o.code == a.visit and o.repeat for o in visits):
                    r.error(
                        f"visits.{v.code}.{where}", a.visit, "cannot anchor on a repeating visit"
                    )
        for other in visits:
            rest = other.code[len(v.code) :]
            if v.repeat and other is not v and other.code.startswith(v.code) and rest.isdigit():
                # FU repeating makes FU1, FU2, ...: a visit FU1 (or a repeat FU1 making FU12)
                # would share a code with an occurrence, and a record could not tell them apart.
                r.error(
                    f"visits.{other.code}.code",
                    other.code,
                    f"clashes with the occurrence codes of the repeating visit {v.code}",
                )
        if v.repeat and v.repeat.stop_visit and v.repeat.stop_visit not in codes:
            r.error(f"visits.{v.code}.repeat.stop_visit", v.repeat.stop_visit, "unknown visit")
    day1 = study.get("day1_visit")
    if isinstance(day1, str) and codes and day1 not in codes:
        r.error("study.day1_visit", day1, "unknown visit")
    elif any(v.code == day1 and v.condition for v in visits):
        # Every participant has a Day 1: study days count from it.
        r.error("study.day1_visit", day1, "the Day 1 visit cannot depend on a condition")
    screening_visit = r.code(study.get("screening_visit"), "study.screening_visit")
    if screening_visit is not None and screening_visit not in codes:
        r.error("study.screening_visit", screening_visit, "unknown visit")
    if rules.early_end_visit is not None and rules.early_end_visit not in codes:
        r.error("rules.early_end_visit", rules.early_end_visit, "unknown visit")
    if not visits and "visits" in doc:
        r.error("visits", [], "a protocol needs at least one visit")
    if (
        not r.errors
        and not any(v.is_dosing for v in visits)
        and any(v.anchor.kind is AnchorKind.LAST_DOSE for v in visits)
    ):
        r.error("visits", "last-dose", "is used as an anchor but no visit gives a dose")
    protocol = Protocol(
        id=r.text(study, "id", "study"),
        title=r.text(study, "title", "study"),
        sponsor_id=r.text(study, "sponsor_id", "study"),
        day1_visit=r.text(study, "day1_visit", "study"),
        description=r.text(study, "description", "study", multiline=True),
        screening_visit=r.text(study, "screening_visit", "study") or None,
        epochs=tuple(epochs),
        visits=tuple(visits),
        sites=tuple(sites),
        rules=rules,
    )
    if not r.errors:
        try:
            dependency_order(protocol)
        except ProtocolError as exc:
            r.error(exc.field, exc.value, exc.rule)
    if r.errors:
        raise ProtocolErrors(r.errors)
    return protocol


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
        {"code", "name", "timezone", "country", "subdivision"},
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
    return Site(
        code=r.text(s, "code", path),
        name=r.text(s, "name", path),
        timezone=zone,
        country=r.text(s, "country", path),
        subdivision=r.text(s, "subdivision", path) or None,
    )


def _procedures(r: _Reader, raw: object) -> dict[str, Procedure]:
    if not isinstance(raw, Mapping):
        r.error("procedures", raw, "must be a table of procedures by code")
        return {}
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
            stop_visit=r.code(rp.get("stop_visit"), f"{path}.repeat.stop_visit"),
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
        if isinstance(pc, str) and pc in procedures:
            procs.append(procedures[pc])
        else:
            r.error(f"{path}.procedures", pc, "unknown procedure; define it under [procedures]")
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
    return doc


def dumps(protocol: Protocol) -> str:
    """The protocol as TOML text that :func:`loads` reads back to an equal protocol."""
    import tomli_w

    return tomli_w.dumps(to_dict(protocol))


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
    if v.not_before:
        d["not_before"] = {
            "anchor": _anchor(v.not_before.anchor),
            "offset": _offset(v.not_before.offset),
        }
    d["procedures"] = [p.code for p in v.procedures]
    return d
