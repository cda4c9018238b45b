"""Protocol files: read (TOML or JSON) into the model with strict validation, and write back.

A protocol file is meant to be read and reviewed by a person; see docs/protocol-files.md.
Validation collects every error it can find before raising, so ``visitplan protocol check``
reports them all at once.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from visitplan.engine import dependency_order
from visitplan.errors import ProtocolError, VisitplanError
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

_OFFSET = re.compile(r"^\s*([+-]?\d+)\s*(day|days|week|weeks|month|months)\s*$")
_VISIT_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
_MILESTONE_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_UNITS = {"day": Unit.DAYS, "week": Unit.WEEKS, "month": Unit.MONTHS}


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
            self.error(path, raw, "must be a table")
            return {}
        for key in raw:
            if key not in allowed:
                self.error(f"{path}.{key}" if path else key, raw[key], "unknown field")
        for key in sorted(required - set(raw)):
            self.error(f"{path}.{key}" if path else key, None, "is required")
        return dict(raw)

    def text(self, raw: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.error(f"{path}.{key}", value, "must be text")
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
        unit = _UNITS[m.group(2).rstrip("s")]
        if unit is Unit.MONTHS and not months:
            self.error(path, raw, "must be in days or weeks (months have no fixed length here)")
            return None
        return Offset(int(m.group(1)), unit)

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
    try:
        raw = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("file", source, f"is not valid {fmt.upper()}: {exc}") from None
    return from_dict(raw, source=source)


def load(path: str | Path) -> Protocol:
    """Read a protocol file (``.toml`` or ``.json``)."""
    path = Path(path)
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    try:
        text = path.read_text(encoding="utf-8")
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
        {"study", "sites", "rules", "epochs", "procedures", "visits", "milestones", "washouts"},
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
    rules_raw = r.table(
        doc.get("rules", {}),
        "rules",
        {"min_dose_gap", "early_end_visit", "recovery_event"},
        set(),
    )
    rules = Rules(
        min_dose_gap=r.offset(rules_raw.get("min_dose_gap"), "rules.min_dose_gap"),
        early_end_visit=rules_raw.get("early_end_visit"),
        recovery_event=r.name(rules_raw.get("recovery_event"), "rules.recovery_event"),
    )
    visits = _list(r, doc.get("visits", []), "visits", lambda v, p: _visit(r, v, p, procedures))
    milestones = _list(r, doc.get("milestones", []), "milestones", lambda m, p: _milestone(r, m, p))
    washouts = _list(r, doc.get("washouts", []), "washouts", lambda w, p: _washout(r, w, p))

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
        if v.repeat and v.repeat.stop_visit and v.repeat.stop_visit not in codes:
            r.error(f"visits.{v.code}.repeat.stop_visit", v.repeat.stop_visit, "unknown visit")
    day1 = study.get("day1_visit")
    if isinstance(day1, str) and codes and day1 not in codes:
        r.error("study.day1_visit", day1, "unknown visit")
    screening_visit = study.get("screening_visit")
    if screening_visit is not None and screening_visit not in codes:
        r.error("study.screening_visit", screening_visit, "unknown visit")
    if rules.early_end_visit is not None and rules.early_end_visit not in codes:
        r.error("rules.early_end_visit", rules.early_end_visit, "unknown visit")
    _check_events_and_washouts(r, visits, milestones, washouts)
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
        description=r.text(study, "description", "study"),
        screening_visit=r.text(study, "screening_visit", "study") or None,
        epochs=tuple(epochs),
        visits=tuple(visits),
        sites=tuple(sites),
        rules=rules,
        milestones=tuple(milestones),
        washouts=tuple(washouts),
    )
    if not r.errors:
        try:
            dependency_order(protocol)
        except ProtocolError as exc:
            r.error(exc.field, exc.value, exc.rule)
    if r.errors:
        raise ProtocolErrors(r.errors)
    return protocol


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
        {"code", "name", "timezone", "country", "subdivision", "bcell_lln", "bcell_unit"},
        {"code", "name", "timezone", "country"},
    )
    if not s:
        return None
    zone = r.text(s, "timezone", path)
    if zone:
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
            if not isinstance(amount, int | float) or isinstance(amount, bool) or amount <= 0:
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
            not isinstance(count, int) or isinstance(count, bool) or count < 1
        ):
            r.error(f"{path}.repeat.count", count, "must be a whole number of at least 1")
            count = None
        until = r.offset(rp.get("until"), f"{path}.repeat.until")
        if "count" not in rp and "until" not in rp:
            r.error(f"{path}.repeat", dict(rp), "needs a 'count' or an 'until' so that it ends")
        repeat = Repeat(
            every=every_or_none or Offset(1),
            count=count,
            until=until,
            stop_event=r.name(rp.get("stop_event"), f"{path}.repeat.stop_event"),
            stop_visit=rp.get("stop_visit"),
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
        if pc in procedures:
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
    if v.merge:
        d["merge"] = v.merge.value
    if v.not_before:
        d["not_before"] = {
            "anchor": _anchor(v.not_before.anchor),
            "offset": _offset(v.not_before.offset),
        }
    d["procedures"] = [p.code for p in v.procedures]
    return d
