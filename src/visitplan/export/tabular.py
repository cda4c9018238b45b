"""Schedules as JSON (a stable, documented contract) and CSV."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from visitplan import csvfile
from visitplan.csvfile import safe_cell
from visitplan.model import Protocol
from visitplan.participant import Participant
from visitplan.schedule import PlannedVisit, Schedule

#: Bumped only on a breaking change of the JSON layout (see docs/json.md).
JSON_SCHEMA_VERSION = 1

__all__ = ["CSV_COLUMNS", "JSON_SCHEMA_VERSION", "safe_cell", "schedule_dict", "to_csv",
           "to_json", "visit_dict"]  # fmt: skip

CSV_COLUMNS = (
    "participant", "code", "name", "kind", "epoch", "target", "earliest", "latest",
    "study_day", "tentative", "status", "actual", "procedures",
)  # fmt: skip


def visit_dict(v: PlannedVisit) -> dict[str, Any]:
    """One visit as the JSON contract describes it."""
    return {
        "code": v.code,
        "name": v.name,
        "kind": v.kind.value,
        "epoch": v.epoch.code,
        "target": v.target.isoformat(),
        "earliest": v.earliest.isoformat(),
        "latest": v.latest.isoformat(),
        "study_day": v.study_day,
        "tentative": v.tentative,
        "status": v.status.value,
        "actual": v.actual.isoformat() if v.actual else None,
        "procedures": [p.describe() for p in v.procedures],
        # Why it is cancelled or not planned (e.g. "not planned: no dose of the study drug
        # was given"), or the reason recorded with it; JSON only, never in calendars.
        "reason": v.reason,
    }


def schedule_dict(
    protocol: Protocol, participant: Participant, schedule: Schedule
) -> dict[str, Any]:
    """One participant's plan: ``protocol``, ``participant``, ``visits``, ``findings``,
    ``milestones``."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "protocol": {"id": protocol.id, "title": protocol.title, "sponsor_id": protocol.sponsor_id},
        "participant": {
            "code": participant.code,
            "screening": participant.screening.isoformat(),
            "day1": schedule.day1.isoformat(),
            "last_dose": schedule.last_dose.isoformat() if schedule.last_dose else None,
        },
        "visits": [visit_dict(v) for v in schedule.visits],
        "findings": [
            {"visit": f.visit, "kind": f.kind.value, "message": f.message}
            for f in schedule.findings
        ],
        "milestones": [
            {"code": m.code, "name": m.name, "date": m.date.isoformat(), "tentative": m.tentative}
            for m in schedule.milestones
        ],
    }


def to_json(protocol: Protocol, participant: Participant, schedule: Schedule) -> str:
    """The JSON text of :func:`schedule_dict`, indented, UTF-8 friendly."""
    return json.dumps(schedule_dict(protocol, participant, schedule), indent=2, ensure_ascii=False)


def to_csv(schedules: Iterable[Schedule], *, excel: bool = False) -> str:
    """Visits of one or more participants as CSV rows, one visit a row (cells formula-safe, see
    :mod:`visitplan.csvfile`; ``excel``: ``;`` and a byte-order mark, for a French
    spreadsheet)."""

    def rows() -> Iterator[list[object]]:
        for s in schedules:
            for v in s.visits:
                d = visit_dict(v)
                d["participant"] = s.participant
                d["procedures"] = "; ".join(d["procedures"])
                d["tentative"] = "yes" if v.tentative else "no"
                yield [d[c] for c in CSV_COLUMNS]

    return csvfile.to_csv(CSV_COLUMNS, rows(), excel=excel)
