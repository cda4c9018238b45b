"""The pieces of the USDM export: ids, codes, extension attributes, a visit's rule."""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

import attrs

from visitplan import cdisc_ct as ct
from visitplan.export.cdisc import (
    reference_schedule,
)
from visitplan.model import AnchorKind, Protocol, Visit
from visitplan.schedule import PlannedVisit

USDM_VERSION = "4.0.0"
#: The base of visitplan's extension attribute URLs.
EXT = "https://visitplan.readthedocs.io/usdm/"
NS = uuid.UUID("8f0d8a43-5a4e-4b52-9a51-6a1d3b1c2e70")
REGISTRY = "ClinicalTrials.gov"

Obj = dict[str, Any]


class Builder:
    """Ids (``Class_n``, unique in the document) and the coded values."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def id(self, kind: str) -> str:
        self.n[kind] = self.n.get(kind, 0) + 1
        return f"{kind}_{self.n[kind]}"

    def obj(self, kind: str, **fields: Any) -> Obj:
        return {"id": self.id(kind), "extensionAttributes": [], **fields, "instanceType": kind}

    def code(self, term: ct.Term, system: str = ct.CDISC_SYSTEM) -> Obj:
        version = ct.CT_PACKAGE_DATE if system == ct.CDISC_SYSTEM else "1"
        return self.obj(
            "Code",
            code=term.code,
            codeSystem=system,
            codeSystemVersion=version,
            decode=term.submission,
        )

    def alias(self, term: ct.Term) -> Obj:
        return self.obj("AliasCode", standardCode=self.code(term), standardCodeAliases=[])

    def ext(self, name: str, value: object) -> Obj:
        return {
            "id": self.id("ExtensionAttribute"),
            "url": EXT + name,
            "valueString": json.dumps(value, ensure_ascii=False, sort_keys=True),
            "extensionAttributes": [],
            "instanceType": "ExtensionAttribute",
        }


def named(b: Builder, kind: str, name: str, label: str, description: str, **f: Any) -> Obj:
    return b.obj(kind, name=name, label=label, description=description, **f)


def template(b: Builder, kind: str, name: str, label: str, description: str, text: str,
             **f: Any) -> Obj:  # fmt: skip
    """A USDM syntax template (criterion item, objective, endpoint, condition): its ``text``
    is XHTML, so the protocol's text is escaped; no dictionary, no notes."""
    return named(
        b, kind, name, label, description,
        text=html.escape(text, quote=False), dictionaryId=None, notes=[], **f,
    )  # fmt: skip


def link(items: list[Obj]) -> list[Obj]:
    for i, item in enumerate(items):
        item["previousId"] = items[i - 1]["id"] if i else None
        item["nextId"] = items[i + 1]["id"] if i + 1 < len(items) else None
    return items


def unmerged_plan(protocol: Protocol) -> list[PlannedVisit]:
    """The reference plan with every occurrence of a repeat, none done at another visit."""
    whole = attrs.evolve(protocol, visits=tuple(attrs.evolve(v, merge=None) for v in protocol))
    return list(reference_schedule(whole).visits)


def visit_rule(v: Visit) -> Obj:
    """What USDM's timings cannot say about a visit (read back by the importer)."""
    rule: Obj = {"kind": v.kind.value}
    if v.anchor.kind is not AnchorKind.VISIT:
        rule["anchor"] = "last-dose" if v.anchor.kind is AnchorKind.LAST_DOSE else "screening"
        rule["offset"] = str(v.offset)
    if v.window.strict:
        rule["strict"] = True
    for key, value in (("condition", v.condition), ("wait_for", v.wait_for)):
        if value:
            rule[key] = value
    if v.merge is not None:
        rule["merge"] = v.merge.value
    if v.translations:  # the name in other languages: USDM's own texts stay as written
        rule["translations"] = dict(v.translations)
    if v.not_before is not None:
        a = v.not_before.anchor
        rule["not_before"] = {
            "anchor": str(a) if a.kind is AnchorKind.VISIT else a.kind.value.replace("_", "-"),
            "offset": str(v.not_before.offset),
        }
    if v.repeat is not None:
        r = v.repeat
        rule["repeat"] = {
            k: x
            for k, x in (
                ("every", str(r.every)),
                ("count", r.count),
                ("until", str(r.until) if r.until else None),
                ("stop_event", r.stop_event),
                ("stop_visit", r.stop_visit),
            )
            if x is not None
        }
    return rule


def transition_rule(b: Builder, which: str, element: str, text: str) -> Obj:
    return named(b, "TransitionRule", f"{element} {which}", text, text, text=text)


def dosing_epoch(p: Protocol) -> str | None:
    return next((v.epoch for v in p if v.is_dosing), None)


def package_version() -> str:
    from visitplan import __version__

    return str(__version__)
