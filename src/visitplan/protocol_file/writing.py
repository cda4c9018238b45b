"""Writing a protocol back: the plain structure of a protocol file, and its text."""

from __future__ import annotations

import json
from typing import Any

from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import Anchor, AnchorKind, Milestone, Offset, Protocol, Visit, Washout, Window


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
    if protocol.sponsor:
        study["sponsor"] = protocol.sponsor
    if protocol.phase:
        study["phase"] = protocol.phase
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
    doc["epochs"] = [
        {
            k: v
            for k, v in (
                ("code", e.code),
                ("name", e.name),
                ("type", e.type),
                ("etcd", e.etcd),
                ("translations", dict(e.translations)),
            )
            if v
        }
        for e in protocol.epochs
    ]
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
                if d.intervention_type:
                    entry["dose"]["intervention_type"] = d.intervention_type
                if d.translations:
                    entry["dose"]["translations"] = dict(d.translations)
            if p.translations:
                entry["translations"] = dict(p.translations)
            procs[p.code] = entry
    doc["procedures"] = procs
    doc["visits"] = [_visit_dict(v) for v in protocol.visits]
    if protocol.milestones:
        doc["milestones"] = [_milestone_dict(m) for m in protocol.milestones]
    if protocol.washouts:
        doc["washouts"] = [_washout_dict(w) for w in protocol.washouts]
    doc.update(_design_dict(protocol))
    return doc


def _design_dict(protocol: Protocol) -> dict[str, Any]:
    """The parts only the CDISC exports read: population, criteria, objectives."""
    doc: dict[str, Any] = {}
    pop = protocol.population
    if pop is not None:
        doc["population"] = {
            k: v
            for k, v in (
                ("min_age", pop.min_age),
                ("max_age", pop.max_age),
                ("sex", pop.sex),
                ("healthy", pop.healthy),
                ("planned_enrollment", pop.planned_enrollment),
            )
            if v is not None
        }
    if protocol.criteria:
        doc["criteria"] = [
            {"code": c.code, "category": c.category, "text": c.text} for c in protocol.criteria
        ]
    if protocol.objectives:
        doc["objectives"] = [
            {"code": o.code, "level": o.level, "text": o.text}
            | ({"endpoints": list(o.endpoints)} if o.endpoints else {})
            for o in protocol.objectives
        ]
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
    if m.translations:
        d["translations"] = dict(m.translations)
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
                "format", "yaml", _("needs PyYAML: pip install 'visitplan[yaml]'")
            ) from None
        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    raise VisitplanError("format", fmt, _("must be one of: toml, json, yaml"))


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
    if v.translations:
        d["translations"] = dict(v.translations)
    return d
