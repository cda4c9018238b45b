"""Building the protocol model from a parsed document, field by field.

Every field is converted by the :class:`~visitplan.protocol_file.reading.Reader`, which
collects errors instead of stopping at the first; the checks across parts follow
(:mod:`visitplan.protocol_file.checks`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from visitplan.codes import COUNTRY, MILESTONE_CODE, STUDY_CODE, STUDY_CODE_RULE, is_visit_code
from visitplan.engine import MAX_OCCURRENCES, dependency_order
from visitplan.errors import ProtocolError
from visitplan.i18n import N_, _
from visitplan.model import (
    Anchor,
    Dose,
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
    Visit,
    VisitKind,
    Washout,
    Window,
)
from visitplan.protocol_file import design
from visitplan.protocol_file.checks import (
    check_events_and_washouts,
    check_references,
    check_unique,
)
from visitplan.protocol_file.reading import ProtocolErrors, Reader

T = TypeVar("T")


def from_dict(raw: object, *, source: str = "<protocol>") -> Protocol:
    """Build a protocol from an already-parsed document (the TOML/JSON structure)."""
    r = Reader(source)
    if not isinstance(raw, Mapping):
        r.error("(document)", raw, _("must be a table of [study], [[epochs]], [[visits]], ..."))
        raise ProtocolErrors(r.errors)
    doc = r.table(
        raw,
        "",
        {
            "study",
            "sites",
            "rules",
            "epochs",
            "procedures",
            "visits",
            "milestones",
            "washouts",
            "population",
            "criteria",
            "objectives",
        },
        {"study", "epochs", "visits"},
    )
    study = r.table(
        doc.get("study"),
        "study",
        {
            "id",
            "title",
            "sponsor_id",
            "day1_visit",
            "screening_visit",
            "description",
            "sponsor",
            "phase",
        },
        {"id", "title", "day1_visit"},
    )
    epochs = _list(r, doc.get("epochs", []), "epochs", lambda e, p: design.epoch(r, e, p))
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
    criteria = _list(r, doc.get("criteria", []), "criteria", lambda c, p: design.criterion(r, c, p))
    objectives = _list(
        r, doc.get("objectives", []), "objectives", lambda o, p: design.objective(r, o, p)
    )
    design.check_etcds(r, epochs)
    design.check_design(r, criteria, objectives)

    check_unique(r, [e.code for e in epochs], "epochs", N_("epoch code"))
    check_unique(r, [s.code for s in sites], "sites", N_("site code"))
    check_unique(r, [v.code for v in visits], "visits", N_("visit code"))
    day1 = r.code(study, "day1_visit", "study")
    screening_visit = r.code(study, "screening_visit", "study")
    check_references(r, visits, epochs, rules, day1, screening_visit, doc.get("visits") == [])
    check_events_and_washouts(r, visits, milestones, washouts)
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
        sponsor=r.text(study, "sponsor", "study"),
        phase=design.phase(r, study),
        population=design.population(r, doc.get("population")),
        criteria=tuple(criteria),
        objectives=tuple(objectives),
    )
    if not r.errors:
        try:
            dependency_order(protocol)  # the engine's own check, as a safety net
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


def _list(r: Reader, raw: object, path: str, item: Callable[[Any, str], T | None]) -> list[T]:
    if not isinstance(raw, list):
        r.error(path, raw, _("must be a list (an array of tables)"))
        return []
    out = []
    for i, element in enumerate(raw):
        if element is None:
            r.error(f"{path}[{i}]", element, _("must be a table"))
            continue
        label = element.get("code") if isinstance(element, Mapping) else None
        made = item(
            element, f"{path}.{label}" if isinstance(label, str) and label else f"{path}[{i}]"
        )
        if made is not None:
            out.append(made)
    return out


def _site(r: Reader, raw: object, path: str) -> Site | None:
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
            r.error(f"{path}.timezone", zone, _("unknown IANA time zone (e.g. 'Europe/Paris')"))
    country = r.text(s, "country", path)
    if country and not COUNTRY.match(country):
        r.error(f"{path}.country", country, _("must be an ISO 3166 two-letter code such as 'FR'"))
    code = r.text(s, "code", path)
    if code and not STUDY_CODE.match(code):
        # A roster names a participant's site by this code: the same rule as for its codes.
        r.error(f"{path}.code", code, STUDY_CODE_RULE)
    return Site(
        code=code,
        name=r.text(s, "name", path),
        timezone=zone,
        country=country,
        subdivision=r.text(s, "subdivision", path) or None,
        **_bcell_limit(r, s, path),
    )


def _bcell_limit(r: Reader, s: Mapping[str, Any], path: str) -> dict[str, Any]:
    if "bcell_lln" not in s:
        if "bcell_unit" in s:
            r.error(f"{path}.bcell_unit", s["bcell_unit"], _("is given without a bcell_lln"))
        return {}
    lln = s["bcell_lln"]
    if not isinstance(lln, int | float) or isinstance(lln, bool) or lln <= 0:
        r.error(f"{path}.bcell_lln", lln, _("must be a positive number (the lab's lower limit)"))
        return {}
    if not _finite(lln):
        r.error(f"{path}.bcell_lln", lln, _("is too large to be a count"))
        return {}
    unit = r.text(s, "bcell_unit", path)
    if not unit:
        r.error(f"{path}.bcell_unit", None, _("is required with bcell_lln (e.g. 'cells/uL')"))
    return {"bcell_lln": float(lln), "bcell_unit": unit}


def _milestone(r: Reader, raw: object, path: str) -> Milestone | None:
    m = r.table(
        raw,
        path,
        {"code", "name", "anchor", "offset", "condition", "translations"},
        {"code", "name", "anchor", "offset"},
    )
    if not m:
        return None
    code = r.text(m, "code", path)
    if code and not MILESTONE_CODE.match(code):
        r.error(
            f"{path}.code",
            code,
            _(
                "milestone codes are 1-32 upper-case letters, digits and '_', starting with a "
                "letter"
            ),
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
        translations=r.translations(m, path),
    )


def _washout(r: Reader, raw: object, path: str) -> Washout | None:
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
        r.error(f"{path}.interval", str(interval), _("cannot be negative"))
    half_lives = w.get("half_lives")
    if half_lives is not None and (
        not isinstance(half_lives, int) or isinstance(half_lives, bool) or half_lives < 1
    ):
        r.error(f"{path}.half_lives", half_lives, _("must be a whole number of at least 1"))
        half_lives = None
    since_raw = w.get("since", ["last-dose"])
    since: list[Since] = []
    if not isinstance(since_raw, list) or not since_raw:
        r.error(f"{path}.since", since_raw, _("must be a list of 'last-dose' and/or 'last-change'"))
    else:
        for item in since_raw:
            try:
                since.append(Since(item))
            except ValueError:
                r.error(f"{path}.since", item, _("must be 'last-dose' or 'last-change'"))
    binds = r.text(w, "binds", path)
    if binds and not is_visit_code(binds):
        r.error(f"{path}.binds", binds, _("must be a visit code (e.g. 'D1' or 'SCR')"))
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


def _procedures(r: Reader, raw: object) -> dict[str, Procedure]:
    if not isinstance(raw, Mapping):
        r.error("procedures", raw, _("must be a table of procedures by code"))
        return {}
    r.duplicates(raw, "procedures")
    out: dict[str, Procedure] = {}
    for code, body in raw.items():
        path = f"procedures.{code}"
        if not is_visit_code(code):
            r.error(path, code, _("procedure codes are upper-case letters, digits and '_'"))
        p = r.table(body, path, {"name", "kind", "condition", "dose", "translations"}, {"name"})
        if not p:
            continue
        dose = None
        if "dose" in p:
            d = r.table(
                p["dose"],
                f"{path}.dose",
                {
                    "drug",
                    "amount",
                    "unit",
                    "route",
                    "injections",
                    "presentation",
                    "intervention_type",
                    "translations",
                },
                {"drug", "amount"},
            )
            amount, injections = d.get("amount"), d.get("injections", 1)
            if (
                not isinstance(amount, int | float)
                or isinstance(amount, bool)
                or not _finite(amount)
                or amount <= 0
            ):
                r.error(f"{path}.dose.amount", amount, _("must be a positive number"))
                amount = 0
            if not isinstance(injections, int) or isinstance(injections, bool) or injections < 1:
                r.error(
                    f"{path}.dose.injections", injections, _("must be a whole number of at least 1")
                )
                injections = 1
            dose = Dose(
                drug=r.text(d, "drug", f"{path}.dose"),
                amount=float(amount),
                unit=r.text(d, "unit", f"{path}.dose", "mg"),
                route=r.text(d, "route", f"{path}.dose", "s.c."),
                injections=injections,
                presentation=r.text(d, "presentation", f"{path}.dose"),
                intervention_type=design.intervention_type(r, d, f"{path}.dose"),
                translations=r.translations(d, f"{path}.dose"),
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
            r.translations(p, path),
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
    "translations",
}


def _visit(r: Reader, raw: object, path: str, procedures: Mapping[str, Procedure]) -> Visit | None:
    v = r.table(raw, path, _VISIT_FIELDS, {"code", "name", "kind", "epoch", "anchor"})
    if not v:
        return None
    code = r.text(v, "code", path)
    if code and not is_visit_code(code):
        r.error(
            f"{path}.code",
            code,
            _("visit codes are 1-16 upper-case letters, digits and '_', starting with a letter"),
        )
    window = Window()
    if "window" in v:
        w = r.table(v["window"], f"{path}.window", {"before", "after", "strict"}, set())
        before = r.offset(w.get("before", "0 days"), f"{path}.window.before") or Offset(0)
        after = r.offset(w.get("after", "0 days"), f"{path}.window.after") or Offset(0)
        for side, o in (("before", before), ("after", after)):
            if o.value < 0:
                r.error(f"{path}.window.{side}", str(o), _("a window bound cannot be negative"))
        strict = w.get("strict", False)
        if not isinstance(strict, bool):
            r.error(f"{path}.window.strict", strict, _("must be true or false"))
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
            r.error(f"{path}.repeat.every", str(every_or_none), _("must be a positive interval"))
        count = rp.get("count")
        if count is not None and (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 1 <= count <= MAX_OCCURRENCES
        ):
            r.error(
                f"{path}.repeat.count",
                count,
                _("must be a whole number from 1 to {MAX_OCCURRENCES}").format(
                    MAX_OCCURRENCES=MAX_OCCURRENCES
                ),
            )
            count = None
        until = r.offset(rp.get("until"), f"{path}.repeat.until")
        if "count" not in rp and "until" not in rp:
            r.error(f"{path}.repeat", dict(rp), _("needs a 'count' or an 'until' so that it ends"))
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
        r.error(f"{path}.procedures", listed, _("must be a list of procedure codes"))
        listed = []
    for pc in listed:
        if not isinstance(pc, str):
            r.error(f"{path}.procedures", pc, _("must be a procedure code (text)"))
        elif pc not in procedures:
            r.error(f"{path}.procedures", pc, _("unknown procedure; define it under [procedures]"))
        elif procedures[pc] in procs:
            r.error(f"{path}.procedures", pc, _("duplicate procedure: listed twice for this visit"))
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
        translations=r.translations(v, path),
    )
