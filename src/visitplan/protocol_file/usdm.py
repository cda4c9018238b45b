"""Reading a USDM v4 study (a ``Wrapper`` JSON document) back into a protocol file.

The inverse of :mod:`visitplan.export.usdm`. The schedule comes from USDM itself: epochs (and
their elements' codes), activities, the main timeline's instances in order with their
encounters, each instance's timing (the visit it counts from, the offset as an ISO 8601
duration, Before or After, the window), the Fixed Reference timing (Day 1) and one
sub-timeline per repeating visit. What USDM cannot say comes from visitplan's extension
attributes (:data:`visitplan.export.usdm.EXT`): a visit's kind, an anchor on the screening
date or the last dose, a repeat's end, ``wait_for``, ``not_before``, flags, merging; a
procedure's kind, flag and dose; the protocol's sites, rules, milestones, washouts and visit
order. Without them a visit is an assessment, a procedure is ``other``, and a repeat has as
many occurrences as its sub-timeline holds.

The result is a protocol document checked by :func:`visitplan.protocol_file.from_dict`, the
one validation every protocol file goes through. A file that is not a USDM v4 ``Wrapper``, or
lacks what planning needs (a main timeline, an encounter for each visit, Day 1, readable
timings), is refused with a one-line :class:`VisitplanError`. See docs/cdisc.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from visitplan import cdisc_ct as ct
from visitplan.errors import VisitplanError
from visitplan.export.usdm import EXT
from visitplan.fileio import read_text
from visitplan.i18n import _
from visitplan.model import Protocol
from visitplan.protocol_file.building import from_dict
from visitplan.protocol_file.reading import parse

#: A USDM file is larger than a protocol file (ids, codes, criteria): visitplan's own export
#: of NCT05124925 is 0.2 MB; a file far past this is not a study.
MAX_USDM_BYTES = 32 * 1024 * 1024
#: ISO 8601 durations in whole years, months, weeks or days (USDM timings and windows).
_ISO = re.compile(r"P(?:(\d{1,6})Y)?(?:(\d{1,6})M)?(?:(\d{1,6})W)?(?:(\d{1,6})D)?", re.ASCII)
_UNITS = ("years", "months", "weeks", "days")
_RULE_KEYS = ("condition", "wait_for", "merge", "not_before", "translations")
_PROTOCOL_PARTS = ("sites", "rules", "milestones", "washouts")
Obj = dict[str, Any]


def load_usdm(path: str | Path) -> Protocol:
    """The protocol of a USDM v4 ``Wrapper`` JSON file (see the module docstring)."""
    return from_dict(read_usdm(path), source=str(path))


def read_usdm(path: str | Path) -> Obj:
    """The protocol document (a protocol file's plain structure) of a USDM v4 JSON file."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise VisitplanError("USDM file", str(path), _("is not a regular file"))
    if path.is_file() and path.stat().st_size > MAX_USDM_BYTES:
        raise VisitplanError(
            "USDM file",
            str(path),
            _(
                "is larger than {value} MB; visitplan's own export of a study is well under 1 MB"
            ).format(value=MAX_USDM_BYTES // (1024 * 1024)),
        )
    text = read_text(path, "USDM file")
    raw = parse(text, source=str(path), fmt="json")
    _refuse_duplicate_keys(raw, str(path))
    return usdm_to_dict(raw, source=str(path))


def _refuse_duplicate_keys(raw: object, source: str) -> None:
    """JSON lets a key appear twice and keeps the last; a study file that does is ambiguous."""
    stack = [raw]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key in getattr(item, "duplicate_keys", ()):
                raise VisitplanError(f"{source}: key", key, _("appears twice in one object"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def usdm_to_dict(raw: object, *, source: str = "<usdm>") -> Obj:
    """The protocol document of a parsed USDM v4 ``Wrapper``; raise if planning cannot use it."""
    return _Reader(raw, source).protocol()


class _Reader:
    """One USDM document: its study version, design, timelines and the ids they refer to."""

    def __init__(self, raw: object, source: str) -> None:
        self.source = source
        version = raw.get("usdmVersion") if isinstance(raw, Mapping) else None
        if (
            not isinstance(raw, Mapping)
            or not isinstance(raw.get("study"), Mapping)
            or not isinstance(version, str)
            or not version.startswith("4.")
        ):
            raise VisitplanError(
                "USDM file",
                source,
                _("is not a USDM v4 Wrapper (an object with usdmVersion 4.x and a study)"),
            )
        self.study: Obj = dict(raw["study"])
        self.version = self._one(self.study, "versions", "study")
        self.design = self._one(self.version, "studyDesigns", "study.versions[0]")
        self.extras = self.ext(self.version, "protocol", "study.versions[0]")
        d = self.design
        self.epochs = {e["id"]: e for e in self._list(d, "epochs", "studyDesign")}
        self.activities = {a["id"]: a for a in self._list(d, "activities", "studyDesign")}
        self.encounters = {e["id"]: e for e in self._list(d, "encounters", "studyDesign")}
        self.timelines = {t["id"]: t for t in self._list(d, "scheduleTimelines", "studyDesign")}
        mains = [t for t in self.timelines.values() if t.get("mainTimeline") is True]
        if len(mains) != 1:
            self.fail("studyDesign.scheduleTimelines", len(mains), _("must have one main timeline"))
        self.main = mains[0]
        self.visit_of: dict[str, str] = {}  # main-timeline instance id -> visit code
        self.names: dict[str, str] = {}  # main-timeline instance id -> visit name

    # -- reading helpers ---------------------------------------------------------------------
    def fail(self, where: str, value: object, rule: str) -> NoReturn:
        raise VisitplanError(f"{self.source}: {where}", value, rule)

    def _list(self, obj: Mapping[str, Any], key: str, where: str) -> list[Obj]:
        items = obj.get(key)
        if not isinstance(items, list) or not all(
            isinstance(x, Mapping) and isinstance(x.get("id"), str) for x in items
        ):
            self.fail(f"{where}.{key}", "(missing)" if items is None else items,
                      _("must be a list of objects with an id"))  # fmt: skip
        return [dict(x) for x in items]

    def items(self, obj: Mapping[str, Any], key: str, where: str) -> list[Obj]:
        """An optional list of objects (absent: empty)."""
        return [dict(x) for x in self._optional_list(obj, key, where, Mapping, "objects")]

    def ids(self, obj: Mapping[str, Any], key: str, where: str) -> list[str]:
        """An optional list of ids (absent: empty)."""
        return [str(x) for x in self._optional_list(obj, key, where, str, "ids")]

    def _optional_list(
        self, obj: Mapping[str, Any], key: str, where: str, kind: type, what: str
    ) -> list[Any]:
        items = obj.get(key)
        if items is None:
            return []
        if not isinstance(items, list) or not all(isinstance(x, kind) for x in items):
            self.fail(f"{where}.{key}", items, _("must be a list of {what}").format(what=what))
        return items

    def _one(self, obj: Mapping[str, Any], key: str, where: str) -> Obj:
        items = self._list(obj, key, where)
        if len(items) != 1:
            self.fail(f"{where}.{key}", len(items), _("visitplan reads a file with exactly one"))
        return items[0]

    def ext(self, obj: Mapping[str, Any], name: str, where: str) -> Obj:
        """visitplan's extension attribute ``name`` of ``obj`` (empty when there is none)."""
        for e in self.items(obj, "extensionAttributes", where):
            if e.get("url") == EXT + name:
                at = f"{where}.extensionAttributes[{EXT + name}]"
                text = e.get("valueString")
                value = parse(text, source=f"{self.source}: {at}", fmt="json") if isinstance(
                    text, str
                ) else None  # fmt: skip
                _refuse_duplicate_keys(value, f"{self.source}: {at}")
                if not isinstance(value, dict):
                    self.fail(at, text, _("must be a JSON object"))
                return dict(value)
        return {}

    def ref(self, table: Mapping[str, Obj], ref: object, where: str) -> Obj:
        if not isinstance(ref, str) or ref not in table:
            self.fail(where, ref, _("refers to nothing in the file"))
        return table[str(ref)]

    def offset(self, value: object, where: str, *, negative: bool = False) -> str:
        """A protocol file offset ("4 weeks") from an ISO 8601 duration in one unit."""
        m = _ISO.fullmatch(value) if isinstance(value, str) else None
        parts = [
            (int(n), unit)
            for n, unit in zip(m.groups() if m else (), _UNITS, strict=False)
            if n is not None
        ]
        if len(parts) != 1:
            self.fail(where, value, _("must be an ISO 8601 duration in one unit (P4W, P35D, P5M)"))
        n, unit = parts[0]
        if unit == "years":
            n, unit = 12 * n, "months"
        return f"{-n if negative and n else n} {unit}"

    # -- the protocol -------------------------------------------------------------------------
    def protocol(self) -> Obj:
        visits = self.visits()
        doc: Obj = {"study": self.study_table(visits)}
        doc |= {k: self.extras[k] for k in _PROTOCOL_PARTS if k in self.extras}
        doc["epochs"] = self.epoch_tables()
        doc["procedures"] = self.procedures()
        doc["visits"] = visits
        doc |= self.design_tables()
        return doc

    def study_table(self, visits: list[Obj]) -> Obj:
        s, version = self.study, self.version
        title = next(
            (t.get("text") for t in self.items(version, "titles", "study.versions[0]")
             if _code(t.get("type")) == ct.OFFICIAL_TITLE.code),
            None,
        ) or s.get("label") or s.get("name")  # fmt: skip
        table: Obj = {"id": s.get("name"), "title": title}
        sponsor = self.sponsor()
        ident = next(
            (i.get("text") for i in self.items(version, "studyIdentifiers", "study.versions[0]")
             if sponsor and i.get("scopeId") == sponsor.get("id")),
            None,
        )  # fmt: skip
        if ident and ident != s.get("name"):
            table["sponsor_id"] = ident
        given = self.extras.get("study")
        given = given if isinstance(given, Mapping) else {}
        table["day1_visit"] = given.get("day1_visit") or self.day1()
        if given.get("screening_visit"):
            table["screening_visit"] = given["screening_visit"]
        elif not self.extras and visits and visits[0]["anchor"] == "screening":
            table["screening_visit"] = visits[0]["code"]
        if s.get("description") and s.get("description") != title:
            table["description"] = s["description"]
        if sponsor and sponsor.get("name") and sponsor.get("name") != "Sponsor":
            table["sponsor"] = sponsor["name"]
        decode = _obj(_obj(self.design.get("studyPhase")).get("standardCode")).get("decode")
        if _key(decode) in ct.PHASE:
            table["phase"] = decode
        return table

    def sponsor(self) -> Obj | None:
        where = "study.versions[0]"
        orgs = {_key(o.get("id")): o for o in self.items(self.version, "organizations", where)}
        for role in self.items(self.version, "roles", where):
            if _code(role.get("code")) == ct.SPONSOR_ROLE.code:
                for oid in self.ids(role, "organizationIds", f"{where}.roles"):
                    if oid in orgs:
                        return dict(orgs[oid])
        return None

    def day1(self) -> str:
        """Day 1: the visit of the main timeline's Fixed Reference timing."""
        for t in self.items(self.main, "timings", "main timeline"):
            if _code(t.get("type")) == ct.TIMING_FIXED.code:
                code = self.visit_of.get(str(t.get("relativeFromScheduledInstanceId")))
                if code:
                    return code
        self.fail("main timeline timings", "(no Fixed Reference)",
                  _("Day 1 is the main timeline's Fixed Reference instance"))  # fmt: skip

    def epoch_tables(self) -> list[Obj]:
        elements = {
            _key(e.get("id")): e for e in self.items(self.design, "elements", "studyDesign")
        }
        element_of: dict[str, str] = {}
        for cell in self.items(self.design, "studyCells", "studyDesign"):
            for eid in self.ids(cell, "elementIds", "studyDesign.studyCells"):
                if eid in elements and isinstance(elements[eid].get("name"), str):
                    element_of.setdefault(str(cell.get("epochId")), elements[eid]["name"])
        out = []
        for eid, e in self.epochs.items():
            table: Obj = {"code": e.get("name"), "name": e.get("label") or e.get("name")}
            term = _obj(e.get("type")).get("decode")
            if _key(term) in ct.EPOCH:
                table["type"] = term
            if element_of.get(eid) not in (None, e.get("name")):
                table["etcd"] = element_of[eid]
            named = _obj(self.extras.get("epoch_translations")).get(str(e.get("name")))
            if named:
                table["translations"] = named
            out.append(table)
        return out

    def procedures(self) -> Obj:
        out: Obj = {}
        for aid, a in self.activities.items():
            rule = self.ext(a, "procedure", f"activity {a.get('name')!r}")
            table: Obj = {"name": a.get("label") or a.get("name"),
                          "kind": rule.get("kind", "other")}  # fmt: skip
            for key in ("condition", "translations"):
                if rule.get(key):
                    table[key] = rule[key]
            dose = rule.get("dose")
            if isinstance(dose, Mapping):
                table["dose"] = {k: _whole(v) for k, v in dose.items() if v not in ("", None)}
            out[str(a.get("name") or aid)] = table
        return out

    # -- the visits ----------------------------------------------------------------------------
    def visits(self) -> list[Obj]:
        instances = [
            i for i in self.items(self.main, "instances", "main timeline")
            if i.get("instanceType") == "ScheduledActivityInstance"
        ]  # fmt: skip
        if not instances:
            self.fail("main timeline", self.main.get("name"), _("has no scheduled instance"))
        heads: list[tuple[Obj, Obj, Obj | None, list[Obj]]] = []
        for inst in instances:  # first every visit's code, so that anchors can name them
            where = f"main timeline instance {inst.get('name')!r}"
            if _key(inst.get("id")) is None:
                self.fail(f"{where}.id", inst.get("id"), _("must be text"))
            sub = self.timelines.get(_key(inst.get("timelineId")) or "")
            occurrences = [
                i for i in self.items(sub or {}, "instances", f"{where} sub-timeline")
                if i.get("encounterId")
            ]  # fmt: skip
            if inst.get("timelineId") and not occurrences:
                self.fail(
                    f"{where}.timelineId",
                    inst["timelineId"],
                    _("must be a sub-timeline holding an instance with an encounter"),
                )
            if sub is not None and inst.get("encounterId"):
                self.fail(
                    where,
                    inst.get("encounterId"),
                    _(
                        "has an encounter and a sub-timeline: visitplan reads a sub-timeline as "
                        "the occurrences of one visit, started by an instance with no encounter"
                    ),
                )
            if sub is not None and self.repeats(sub, occurrences):
                code, name = sub.get("name"), sub.get("label")
                heads.append((inst, occurrences[0], sub, occurrences))
            elif sub is not None:  # a sub-timeline holding one visit: that visit, once
                enc = self.ref(self.encounters, occurrences[0].get("encounterId"), where)
                code, name = enc.get("name"), enc.get("label")
                heads.append((inst, occurrences[0], None, []))
            else:
                enc = self.ref(self.encounters, inst.get("encounterId"), f"{where}.encounterId")
                code, name = enc.get("name"), enc.get("label")
                heads.append((inst, inst, None, []))
            self.visit_of[inst["id"]] = str(code)
            self.names[inst["id"]] = str(name or code)
        timing_of = {
            _key(t.get("relativeFromScheduledInstanceId")): t
            for t in self.items(self.main, "timings", "main timeline")
            if _code(t.get("type")) != ct.TIMING_FIXED.code
        }
        visits = [self.visit(*h, timing_of.get(h[0]["id"])) for h in heads]
        return self.in_file_order(visits)

    def visit(
        self, inst: Obj, first: Obj, sub: Obj | None, occurrences: list[Obj], timing: Obj | None
    ) -> Obj:
        code = self.visit_of[inst["id"]]
        enc = self.ref(self.encounters, first.get("encounterId"), f"visit {code}.encounterId")
        rule = self.ext(enc, "visit", f"encounter {enc.get('name')!r}")
        epoch = self.ref(self.epochs, inst.get("epochId"), f"visit {code}.epochId")
        v: Obj = {
            "code": code,
            "name": self.names[inst["id"]],
            "kind": rule.get("kind", "assessment"),
            "epoch": epoch.get("name"),
        }
        where = f"visit {code} timing"
        if "anchor" in rule:
            v["anchor"], v["offset"] = rule["anchor"], rule.get("offset", "0 days")
        elif timing is not None:
            to = _key(timing.get("relativeToScheduledInstanceId"))
            if to not in self.visit_of:
                self.fail(f"{where}.relativeToScheduledInstanceId", to,
                          _("must be an instance of the main timeline"))  # fmt: skip
            v["anchor"] = self.visit_of[str(to)]
            before = _code(timing.get("type")) == ct.TIMING_BEFORE.code
            v["offset"] = self.offset(timing.get("value"), f"{where}.value", negative=before)
        else:
            v["anchor"], v["offset"] = "screening", "0 days"  # the entry: the screening date
        lower = timing.get("windowLower") if timing else None
        upper = timing.get("windowUpper") if timing else None
        if lower or upper or rule.get("strict"):
            v["window"] = {
                "before": self.offset(lower or "P0D", f"{where}.windowLower"),
                "after": self.offset(upper or "P0D", f"{where}.windowUpper"),
            }
            if rule.get("strict"):
                v["window"]["strict"] = True
        if sub is not None:
            v["repeat"] = rule.get("repeat") or self.repeat_of(sub, occurrences)
        for key in _RULE_KEYS:
            if rule.get(key):
                v[key] = rule[key]
        v["procedures"] = [
            self.ref(self.activities, a, f"visit {code}.activityIds").get("name")
            for a in self.ids(first, "activityIds", f"visit {code}")
        ]
        return v

    def repeats(self, sub: Obj, occurrences: list[Obj]) -> bool:
        """Whether a sub-timeline is a repeating visit: visitplan's rule says so, or it holds
        several occurrences."""
        enc = self.encounters.get(_key(occurrences[0].get("encounterId")) or "")
        rule = self.ext(enc, "visit", f"encounter {enc.get('name')!r}") if enc else {}
        return bool(rule.get("repeat")) or len(occurrences) > 1

    def repeat_of(self, sub: Obj, occurrences: list[Obj]) -> Obj:
        """A repeat without visitplan's rule: as many occurrences as the sub-timeline holds,
        as far apart as its first two."""
        repeat: Obj = {"count": len(occurrences)}
        second = occurrences[1]["id"] if len(occurrences) > 1 else None
        for t in self.items(sub, "timings", f"sub-timeline {sub.get('name')!r}"):
            if t.get("relativeFromScheduledInstanceId") == second:
                where = f"sub-timeline {sub.get('name')!r} timing"
                repeat["every"] = self.offset(t.get("value"), f"{where}.value")
        if "every" not in repeat:
            self.fail(
                f"sub-timeline {sub.get('name')!r}",
                len(occurrences),
                _("needs two timed occurrences to say how often the visit repeats"),
            )
        return repeat

    def in_file_order(self, visits: list[Obj]) -> list[Obj]:
        """The visits in the protocol file's order (it numbers VISITNUM), when the file says it."""
        order = self.extras.get("visit_order")
        if not isinstance(order, list):
            return visits
        by_code = {v["code"]: v for v in visits}
        missing = [c for c in order if c not in by_code]
        if missing:
            self.fail("visit_order", missing[0],
                      _("is a visit of the protocol with no encounter in the file"))  # fmt: skip
        return [by_code[c] for c in order] + [v for v in visits if v["code"] not in order]

    # -- population, criteria, objectives ----------------------------------------------------
    def design_tables(self) -> Obj:
        d = self.design
        doc: Obj = {}
        pop = _obj(d.get("population"))
        age = _obj(pop.get("plannedAge"))
        if age:
            table: Obj = {
                "min_age": _whole(_obj(age.get("minValue")).get("value")),
                "max_age": _whole(_obj(age.get("maxValue")).get("value")),
            }
            sexes = {str(c.get("decode")) for c in self.items(pop, "plannedSex", "population")}
            table["sex"] = "BOTH" if {"F", "M"} <= sexes else next(iter(sexes), "BOTH")
            table["healthy"] = bool(pop.get("includesHealthySubjects"))
            table["planned_enrollment"] = _whole(
                _obj(pop.get("plannedEnrollmentNumber")).get("value")
            )
            doc["population"] = {k: v for k, v in table.items() if v is not None}
        items = {
            _key(i.get("id")): i
            for i in self.items(self.version, "eligibilityCriterionItems", "study.versions[0]")
        }
        criteria = [
            {
                "code": c.get("identifier") or c.get("name"),
                "category": str(_obj(c.get("category")).get("decode", "")).lower(),
                "text": _text(items.get(_key(c.get("criterionItemId")))),
            }
            for c in self.items(d, "eligibilityCriteria", "studyDesign")
        ]
        if criteria:
            doc["criteria"] = criteria
        levels = {t.code: name for name, t in ct.OBJECTIVE_LEVEL.items()}
        objectives = []
        for o in self.items(d, "objectives", "studyDesign"):
            table = {"code": o.get("name"), "level": levels.get(str(_code(o.get("level"))), ""),
                     "text": _text(o)}  # fmt: skip
            if o.get("endpoints"):
                table["endpoints"] = [_text(e) for e in self.items(o, "endpoints", "objective")]
            objectives.append(table)
        if objectives:
            doc["objectives"] = objectives
        return doc


def _key(value: object) -> str | None:
    """An id used to look something up: only text is one."""
    return value if isinstance(value, str) else None


def _obj(value: object) -> Obj:
    """A JSON object as a dict; anything else as an empty one (its fields then are missing)."""
    return dict(value) if isinstance(value, Mapping) else {}


def _text(item: object) -> str:
    """The ``text`` of a USDM syntax-template item, as written before HTML escaping."""
    return html.unescape(str(_obj(item).get("text", "")))


def _code(value: object) -> object:
    """The ``code`` of a USDM Code (or the standard code of an AliasCode)."""
    if isinstance(value, Mapping):
        return value.get("code") or _code(value.get("standardCode"))
    return None


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value
