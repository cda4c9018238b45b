"""The main timeline and the sub-timelines of repeating visits, with their encounters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from visitplan import cdisc_ct as ct
from visitplan.errors import VisitplanError
from visitplan.export.cdisc import (
    iso_duration,
)
from visitplan.export.usdm.parts import (
    Obj,
    link,
    template,
    visit_rule,
)
from visitplan.i18n import _
from visitplan.model import AnchorKind, Offset, Visit
from visitplan.schedule import PlannedVisit

if TYPE_CHECKING:
    from visitplan.export.usdm.study import Study


class Timelines:
    """The main timeline and one sub-timeline per repeating visit, with their encounters."""

    def __init__(self, study: Study) -> None:
        self.s = study
        self.b = study.b
        self.p = study.p
        self.encounters: list[Obj] = []
        self.sub: list[Obj] = []
        self.conditions: list[Obj] = []
        self.instance_of: dict[str, str] = {}  # visit code (non-repeating) -> instance id
        self.series_of: dict[str, str] = {}  # repeating visit code -> its main launcher id

    def build(self) -> tuple[list[Obj], list[Obj]]:
        main_id = self.b.id("ScheduleTimeline")
        plan = self.s.plan
        first: dict[str, PlannedVisit] = {}
        for pv in plan:
            first.setdefault(pv.base_code or pv.code, pv)
        # Main timeline entries in planned order: single visits and each repeat's launcher.
        entries = [pv for pv in plan if pv.occurrence in (None, 1)]
        for pv in entries:
            key = pv.base_code or pv.code
            id_ = self.b.id("ScheduledActivityInstance")
            (self.series_of if pv.occurrence else self.instance_of)[key] = id_
        instances, timings = [], []
        last_dose = next(
            (pv for pv in reversed(plan) if self.p.visit(pv.base_code).is_dosing), None
        )
        for pv in entries:
            v = self.p.visit(pv.base_code)
            if pv.occurrence:
                sub, enc = self.repeat_timeline(v, [x for x in plan if x.base_code == v.code])
                inst = self._instance(self.series_of[v.code], v, None, f"{v.code} series",
                                      f"{v.name} (repeating)", timeline=sub["id"])  # fmt: skip
                self.sub.append(sub)
                timing = self._anchored_timing(v, pv, inst["id"], last_dose)
                # The first occurrence happens at the launcher's timing (its anchor + offset).
                enc["scheduledAtId"] = timing["id"] if timing else None
            else:
                inst = self._instance(self.instance_of[v.code], v, pv, v.code, pv.name)
                timing = self._anchored_timing(v, pv, inst["id"], last_dose)
                self.encounter(pv, v, timing["id"] if timing else None, inst, rule=True)
                if v.condition:
                    self._condition(v.condition, v, [inst["id"]])
            if timing:
                timings.append(timing)
            if pv.code == self.p.day1_visit:
                timings.append(self._fixed(inst["id"], f"{pv.code} anchor", "Day 1 (first dose)"))
            instances.append(inst)
        if not any(t["type"]["code"] == ct.TIMING_FIXED.code for t in timings) and instances:
            timings.append(self._fixed(instances[0]["id"], "ENTRY anchor", "The first visit"))
        exit_ = self.b.obj("ScheduleTimelineExit")
        for i, inst in enumerate(instances):
            inst["defaultConditionId"] = instances[i + 1]["id"] if i + 1 < len(instances) else None
        if instances:
            instances[-1]["timelineExitId"] = exit_["id"]
        waits = [v.code for v in self.p if v.wait_for or (v.repeat and v.repeat.stop_event)]
        main = {
            "id": main_id,
            "extensionAttributes": [],
            "name": "MAIN",
            "label": f"{self.p.id} schedule of activities",
            "description": f"Schedule of activities of {self.p.id}, written by visitplan",
            "mainTimeline": True,
            "entryCondition": "Participant screened (the screening date)",
            "entryId": instances[0]["id"] if instances else None,
            "exits": [exit_],
            "timings": timings,
            "instances": instances,
            "plannedDuration": self.b.obj(
                "Duration",
                text="From screening to the end of study"
                + (f"; {', '.join(waits)} depend on participant events" if waits else ""),
                quantity=None,
                durationWillVary=bool(waits),
                reasonDurationWillVary=(
                    f"Visits {', '.join(waits)} wait for participant events" if waits else None
                ),
            ),
            "instanceType": "ScheduleTimeline",
        }
        self._procedure_conditions()
        self.s.conditions = self.conditions
        return [main, *self.sub], link(self.encounters)

    def _instance(
        self,
        id_: str,
        v: Visit,
        pv: PlannedVisit | None,
        name: str,
        label: str,
        timeline: str | None = None,
    ) -> Obj:
        return {
            "id": id_,
            "extensionAttributes": [],
            "name": name,
            "label": label,
            "description": label,
            "defaultConditionId": None,
            "epochId": self.s.epoch_ids[v.epoch],
            "timelineId": timeline,
            "timelineExitId": None,
            "activityIds": [self.s.activity_ids[x.code] for x in v.procedures] if pv else [],
            "encounterId": None,
            "instanceType": "ScheduledActivityInstance",
        }

    def encounter(
        self, pv: PlannedVisit, v: Visit, timing_id: str | None, instance: Obj, *, rule: bool
    ) -> Obj:
        """The encounter of a planned visit occurrence; the first of a visit carries its rule."""
        enc = {
            "id": self.b.id("Encounter"),
            "extensionAttributes": [self.b.ext("visit", visit_rule(v))] if rule else [],
            "name": pv.code,
            "label": pv.name,
            "description": f"{pv.name} ({v.kind.value})"
            + (f"; only if flagged {v.condition}" if v.condition else ""),
            "type": self.b.code(ct.ENCOUNTER_VISIT),
            "scheduledAtId": timing_id,
            "environmentalSettings": [],
            "contactModes": [],
            "transitionStartRule": None,
            "transitionEndRule": None,
            "notes": [],
            "instanceType": "Encounter",
        }
        instance["encounterId"] = enc["id"]
        self.encounters.append(enc)
        return enc

    def _anchor_instance(self, v: Visit, last_dose: PlannedVisit | None) -> tuple[str, Offset]:
        """The main-timeline instance a visit's timing counts from, and what to add to it."""
        a = v.anchor
        if a.kind is AnchorKind.VISIT:
            return self.instance_of[a.visit or ""], Offset(0)
        if a.kind is AnchorKind.LAST_DOSE and last_dose is not None:
            if last_dose.occurrence is None:
                return self.instance_of[last_dose.code], Offset(0)
            # The last dose is an occurrence of a repeat: count from its launcher (its first).
            every = self.p.visit(last_dose.base_code).repeat
            assert every is not None
            step = every.every
            return self.series_of[last_dose.base_code], Offset(
                step.value * (last_dose.occurrence - 1), step.unit
            )
        if self.p.screening_visit in self.instance_of:
            return self.instance_of[self.p.screening_visit or ""], Offset(0)
        raise VisitplanError(
            f"visits.{v.code}.anchor",
            "screening",
            _(
                "USDM timings count from a visit: give [study] screening_visit, the visit on the "
                "screening date, when several visits anchor on the screening date"
            ),
        )

    def _anchored_timing(
        self, v: Visit, pv: PlannedVisit, from_id: str, last_dose: PlannedVisit | None
    ) -> Obj | None:
        entry = self.p.screening_visit or self._only_on_screening()
        if v.code == entry:
            return None  # the entry: the screening date (+ its offset, in the visit's rule)
        to_id, extra = self._anchor_instance(v, last_dose)
        if extra.value:
            span = v.offset.span() + extra.span()
            value, negative = iso_duration(span), span.months < 0 or span.days < 0
        else:
            value, negative = iso_duration(v.offset), v.offset.value < 0
        return self._timing(pv.code, from_id, to_id, value, negative, v)

    def _only_on_screening(self) -> str | None:
        on = [v.code for v in self.p if v.anchor.kind is AnchorKind.SCREENING]
        return on[0] if len(on) == 1 else None

    def _timing(
        self, name: str, from_id: str, to_id: str, value: str, negative: bool, v: Visit
    ) -> Obj:
        term = ct.TIMING_BEFORE if negative else ct.TIMING_AFTER
        window = v.window.before.value or v.window.after.value
        return {
            "id": self.b.id("Timing"),
            "extensionAttributes": [],
            "name": f"{name} timing",
            "label": f"{name}: {value} {term.submission.lower()}",
            "description": f"{name}: {value} {term.submission.lower()} its anchor",
            "type": self.b.code(term),
            "value": value,
            "valueLabel": value,
            "relativeToFrom": self.b.code(ct.START_TO_START),
            "relativeFromScheduledInstanceId": from_id,
            "relativeToScheduledInstanceId": to_id,
            "windowLower": iso_duration(v.window.before) if window else None,
            "windowUpper": iso_duration(v.window.after) if window else None,
            "windowLabel": f"-{v.window.before} / +{v.window.after}" if window else None,
            "instanceType": "Timing",
        }

    def _fixed(self, instance_id: str, name: str, label: str) -> Obj:
        """A Fixed Reference timing: the instance every other timing of a timeline counts from."""
        return {
            "id": self.b.id("Timing"),
            "extensionAttributes": [],
            "name": name,
            "label": f"{label}: the fixed reference",
            "description": f"{label}: the fixed reference",
            "type": self.b.code(ct.TIMING_FIXED),
            "value": "P0D",
            "valueLabel": "P0D",
            "relativeToFrom": self.b.code(ct.START_TO_START),
            "relativeFromScheduledInstanceId": instance_id,
            "relativeToScheduledInstanceId": instance_id,
            "windowLower": None,
            "windowUpper": None,
            "windowLabel": None,
            "instanceType": "Timing",
        }

    def repeat_timeline(self, v: Visit, occurrences: list[PlannedVisit]) -> tuple[Obj, Obj]:
        """A repeating visit's sub-timeline: each occurrence counted from the first one, a
        decision after each when an event stops the repeat, and one exit."""
        b, r = self.b, v.repeat
        assert r is not None
        tl_id = b.id("ScheduleTimeline")
        exit_ = b.obj("ScheduleTimelineExit")
        instances: list[Obj] = []
        timings: list[Obj] = []
        ids = [b.id("ScheduledActivityInstance") for _ in occurrences]
        end = None
        if r.stop_event:
            end = self._instance(b.id("ScheduledActivityInstance"), v, None, f"{v.code} END",
                                 f"End of {v.name}")  # fmt: skip
        first: Obj = {}
        for k, (pv, id_) in enumerate(zip(occurrences, ids, strict=True), start=1):
            inst = self._instance(id_, v, pv, pv.code, pv.name)
            if k == 1:
                timings.append(self._fixed(id_, f"{pv.code} anchor", f"{pv.code}, the first"))
                first = self.encounter(pv, v, None, inst, rule=True)
            else:
                step = Offset(r.every.value * (k - 1), r.every.unit)
                t = self._timing(pv.code, id_, ids[0], iso_duration(step), False, v)
                timings.append(t)
                self.encounter(pv, v, t["id"], inst, rule=False)
            instances.append(inst)
            nxt = ids[k] if k < len(ids) else (end["id"] if end else None)
            if r.stop_event and nxt is not None:
                decision = {
                    "id": b.id("ScheduledDecisionInstance"),
                    "extensionAttributes": [],
                    "name": f"{pv.code} {r.stop_event}?",
                    "label": f"{r.stop_event} recorded?",
                    "description": f"After {pv.code}: stop {v.name} once {r.stop_event} is "
                    "recorded",
                    "defaultConditionId": nxt,
                    "epochId": self.s.epoch_ids[v.epoch],
                    "conditionAssignments": [
                        b.obj(
                            "ConditionAssignment",
                            condition=f"{r.stop_event} recorded",
                            conditionTargetId=(end or inst)["id"],
                        )
                    ],
                    "instanceType": "ScheduledDecisionInstance",
                }
                inst["defaultConditionId"] = decision["id"]
                instances.append(decision)
            else:
                inst["defaultConditionId"] = nxt
        if end is not None:
            instances.append(end)
        instances[-1]["timelineExitId"] = exit_["id"]
        if v.condition:
            self._condition(v.condition, v, [self.series_of[v.code], *ids])
        ends = [f"{r.count} occurrences" if r.count else "", f"until {r.until}" if r.until else "",
                f"until {r.stop_event}" if r.stop_event else "",
                f"until {r.stop_visit}" if r.stop_visit else ""]  # fmt: skip
        return {
            "id": tl_id,
            "extensionAttributes": [],
            "name": v.code,
            "label": v.name,
            "description": f"{v.name}: every {r.every}, "
            + ", ".join(x for x in ends if x)
            + (f"; occurrences done at another visit ({v.merge.value})" if v.merge else ""),
            "mainTimeline": False,
            "entryCondition": f"Only for participants flagged {v.condition}"
            if v.condition
            else f"Every participant reaching {v.code}1",
            "entryId": ids[0],
            "exits": [exit_],
            "timings": timings,
            "instances": instances,
            "plannedDuration": None,
            "instanceType": "ScheduleTimeline",
        }, first

    def _condition(self, flag: str, v: Visit, context: list[str]) -> None:
        self._add_condition(
            f"visit {v.code}", f"{v.name}: only if", f"Visit {v.code} applies only to",
            flag, context, [self.s.activity_ids[x.code] for x in v.procedures],
        )  # fmt: skip

    def _procedure_conditions(self) -> None:
        for code, pr in self.s.procs.items():
            if not pr.condition:
                continue
            where = [
                i
                for v in self.p
                for i in (self.instance_of.get(v.code), self.series_of.get(v.code))
                if i and any(x.code == code for x in v.procedures)
            ]
            self._add_condition(
                code, f"{pr.name}: only if", f"Procedure {code} is done only for",
                pr.condition, where, [self.s.activity_ids[code]],
            )  # fmt: skip

    def _add_condition(
        self, what: str, label: str, description: str, flag: str, context: list[str],
        applies_to: list[str],
    ) -> None:  # fmt: skip
        """A Condition: ``what`` (a visit or a procedure) only for participants flagged ``flag``."""
        self.conditions.append(
            template(
                self.b,
                "Condition",
                f"{what} if {flag}",
                f"{label} flagged {flag}",
                f"{description} participants flagged {flag}",
                f"Only for participants flagged {flag}",
                contextIds=context,
                appliesToIds=applies_to,
            )
        )
