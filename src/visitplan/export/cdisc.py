"""CDISC SDTM exports: trial design (TV, TE, TA) and subject visits (SV); USDM is export.usdm.

Versions followed: SDTMIG v3.4 (SDTM v2.0), codes from :mod:`visitplan.cdisc_ct`; see
docs/cdisc.md for every mapping choice. No date is computed here: planned study days come from
the engine (a reference participant planned by :func:`visitplan.engine.plan`), actual study
days from the engine's ``study_day`` or :func:`visitplan.dates.study_day`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from visitplan.cdisc_ct import default_epoch_term, epoch_term
from visitplan.dates import Span, study_day
from visitplan.engine import plan
from visitplan.errors import VisitplanError
from visitplan.i18n import _
from visitplan.model import AnchorKind, Epoch, Offset, Protocol, Unit, Visit
from visitplan.participant import Participant
from visitplan.participant import UnscheduledVisit as UnscheduledVisit
from visitplan.schedule import PlannedVisit, Schedule, VisitStatus

SDTMIG_VERSION = "3.4"

TV_COLUMNS = ("STUDYID", "DOMAIN", "VISITNUM", "VISIT", "VISITDY", "ARMCD", "TVSTRL", "TVENRL")
TE_COLUMNS = ("STUDYID", "DOMAIN", "ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR")
TA_COLUMNS = (
    "STUDYID", "DOMAIN", "ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH", "TATRANS",
    "EPOCH",
)  # fmt: skip
SV_COLUMNS = (
    "STUDYID", "DOMAIN", "USUBJID", "VISITNUM", "VISIT", "SVPRESP", "SVOCCUR", "SVREASOC",
    "EPOCH", "SVSTDTC", "SVENDTC", "SVSTDY", "SVENDY", "SVUPDES",
)  # fmt: skip

#: VISITNUM = position of the visit definition in the protocol file x this + occurrence.
VISITNUM_STEP = 100
#: The participant planned to obtain the protocol's nominal (planned) visits and study days.
#: Only calendar-month timings depend on this date, and those get no VISITDY.
REFERENCE_SCREENING = "2001-01-01"
#: SDTM limits: ETCD 8 characters, ARMCD 20.
_ETCD_MAX = 8
_ARMCD_MAX = 20

Row = dict[str, str]


# -- identifiers ------------------------------------------------------------------------------
def studyid(protocol: Protocol) -> str:
    """STUDYID: the sponsor's protocol identifier when the file gives one, else the study id."""
    return protocol.sponsor_id or protocol.id


def visitnum(protocol: Protocol, code: str, occurrence: int | None = None) -> int:
    """The planned VISITNUM of visit ``code`` (its ``occurrence`` for a repeating visit).

    ``100 x`` the visit's 1-based position in the protocol file, plus the occurrence number:
    SCR=100, D1=200, ..., FU1=901, FU2=902, EOS=1000. Stable for a given protocol file.
    """
    for i, v in enumerate(protocol.visits, start=1):
        if v.code == code:
            n = occurrence or 0
            if n >= VISITNUM_STEP:
                raise VisitplanError(
                    "VISITNUM",
                    f"{code}{n}",
                    _("a repeating visit can have at most {value} occurrences").format(
                        value=VISITNUM_STEP - 1
                    ),
                )
            return VISITNUM_STEP * i + n
    raise VisitplanError("visit", code, _("unknown visit code for {id}").format(id=protocol.id))


def iso_duration(span: Offset | Span) -> str:
    """An ISO 8601 duration of an offset or span, sign dropped: P4W, P35D, P5M, P5M14D."""
    if isinstance(span, Offset):
        letter = {Unit.DAYS: "D", Unit.WEEKS: "W", Unit.MONTHS: "M"}[span.unit]
        return f"P{abs(span.value)}{letter}"
    months, days = abs(span.months), abs(span.days)
    if months and days:
        return f"P{months}M{days}D"
    if months:
        return f"P{months}M"
    return f"P{days // 7}W" if days and days % 7 == 0 else f"P{days}D"


def etcd(epoch: Epoch) -> str:
    """SDTM ETCD of an epoch's element: its ``etcd``, else its code when that fits 8 characters.

    A longer code is never cut (two epochs could share the cut code): the protocol file names
    the element code instead.
    """
    code = epoch.etcd or epoch.code
    if len(code) > _ETCD_MAX:
        raise VisitplanError(
            f"epochs.{epoch.code}.code",
            epoch.code,
            _(
                "is longer than the {ETCD_MAX} characters of an SDTM element code (ETCD): give "
                "etcd = ... in the protocol file"
            ).format(ETCD_MAX=_ETCD_MAX),
        )
    return code


def epoch_value(epoch: Epoch) -> str:
    """SDTM EPOCH: the epoch's CDISC EPOCH term (C99079), given or spelt by its code or name."""
    term = (epoch_term(epoch.type) if epoch.type else None) or default_epoch_term(
        epoch.code, epoch.name
    )
    if term is None:
        raise VisitplanError(
            f"epochs.{epoch.code}.type",
            "(missing)",
            _(
                "neither the epoch code nor its name is a CDISC EPOCH term (C99079): give type = "
                "... in the protocol file (e.g. 'SCREENING', 'TREATMENT', 'FOLLOW-UP')"
            ),
        )
    return term.submission


def _etcds(protocol: Protocol) -> dict[str, str]:
    return {e.code: etcd(e) for e in protocol.epochs}


def default_arm(protocol: Protocol) -> tuple[str, str]:
    """(ARMCD, ARM) for the protocol's single arm, named after the study drug(s) it gives."""
    doses: dict[str, str] = {}
    for v in protocol.visits:
        for p in v.procedures:
            if p.dose is not None:
                d = p.dose
                doses.setdefault(d.drug, f"{d.drug} {d.amount:g} {d.unit} {d.route}".strip())
    if not doses:
        return "A1", protocol.title
    code = "+".join(re.sub(r"[^A-Z0-9]", "", drug.upper()) for drug in doses)
    return code[:_ARMCD_MAX], "; ".join(doses.values())


# -- the reference (nominal) plan ---------------------------------------------------------------
def reference_schedule(protocol: Protocol) -> Schedule:
    """The protocol's planned visits: a participant with every flag, no event and no record."""
    flags = {v.condition for v in protocol.visits if v.condition} | {
        p.condition for v in protocol.visits for p in v.procedures if p.condition
    }
    person = Participant("REFERENCE", REFERENCE_SCREENING, flags=frozenset(flags))
    return plan(protocol, person)


def planned_study_days(protocol: Protocol) -> dict[str, int | None]:
    """VISITDY by visit occurrence code: the engine's study day where it is fixed, else None.

    A planned day is fixed when the visit's timing from Day 1 is a whole number of days
    (no calendar months on the way, no event to wait for).
    """
    fixed = _FixedDays(protocol)
    return {
        pv.code: pv.study_day if fixed.fixed(protocol.visit(pv.base_code)) else None
        for pv in reference_schedule(protocol).visits
    }


class _FixedDays:
    """Whether a visit's target is a fixed number of days from Day 1 (or from screening)."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.dosing = [v for v in protocol.visits if v.is_dosing]

    @staticmethod
    def _days_only(v: Visit) -> bool:
        months = v.offset.unit is Unit.MONTHS or (
            v.repeat is not None and v.repeat.every.unit is Unit.MONTHS
        )
        held = v.not_before is not None and v.not_before.offset.unit is Unit.MONTHS
        return not months and not held and v.wait_for is None

    def fixed(self, v: Visit, base: str = "day1") -> bool:
        """True when ``v`` is a fixed number of days from ``base`` ("day1" or "screening")."""
        if base == "day1" and v.code == self.protocol.day1_visit:
            return True
        if not self._days_only(v):
            return False
        a = v.anchor
        if a.kind is AnchorKind.VISIT:
            return self.fixed(self.protocol.visit(a.visit or ""), base)
        if a.kind is AnchorKind.LAST_DOSE:
            return bool(self.dosing) and all(self.fixed(d, base) for d in self.dosing)
        return base == "screening" or self.fixed(
            self.protocol.visit(self.protocol.day1_visit), "screening"
        )


# -- SDTM trial design --------------------------------------------------------------------------
def _anchor_text(protocol: Protocol, v: Visit) -> str:
    a = v.anchor
    if a.kind is AnchorKind.SCREENING:
        return "screening date"
    if a.kind is AnchorKind.LAST_DOSE:
        return "last dose"
    return f"{a.visit} ({protocol.visit(a.visit or '').name})"


def _timing_text(protocol: Protocol, v: Visit, occurrence: int | None) -> str:
    text = f"{_anchor_text(protocol, v)} + {v.offset}"
    if v.repeat is not None and occurrence and occurrence > 1:
        text += f" + {occurrence - 1} x {v.repeat.every}"
    return text


def tv_rows(protocol: Protocol) -> list[Row]:
    """SDTM TV: one row per planned visit; a repeating visit has one row per planned occurrence.

    ARMCD is null: visit timing does not depend on the arm (SDTMIG TV assumption). TVSTRL holds
    the target and the earliest date, TVENRL the latest (TV has no window variables).
    """
    days = planned_study_days(protocol)
    rows = []
    for pv in reference_schedule(protocol).visits:
        v = protocol.visit(pv.base_code)
        timing = _timing_text(protocol, v, pv.occurrence)
        start = f"Target {timing}"
        if v.window.before.value:
            start += f"; earliest {v.window.before} before the target"
        if v.wait_for:
            start += f"; on the {v.wait_for} date once known, kept inside the window"
        if v.not_before:
            start += f"; never before {v.not_before.anchor} + {v.not_before.offset}".replace(
                "last_dose", "last dose"
            )
        if v.condition:
            start += f"; only for participants flagged {v.condition}"
        end = (
            f"Latest {v.window.after} after the target"
            if v.window.after.value
            else "On the target day"
        )
        day = days.get(pv.code)
        rows.append(
            {
                "STUDYID": studyid(protocol),
                "DOMAIN": "TV",
                "VISITNUM": str(visitnum(protocol, pv.base_code, pv.occurrence)),
                "VISIT": pv.name,
                "VISITDY": "" if day is None else str(day),
                "ARMCD": "",
                "TVSTRL": start,
                "TVENRL": end,
            }
        )
    rows.sort(key=lambda r: int(r["VISITNUM"]))
    return rows


def _epoch_bounds(protocol: Protocol) -> list[tuple[str, PlannedVisit, PlannedVisit]]:
    """(epoch code, first planned visit, last planned visit) in epoch order."""
    ref = reference_schedule(protocol).visits
    out = []
    for e in protocol.epochs:
        mine = [pv for pv in ref if pv.epoch.code == e.code]
        if mine:
            out.append((e.code, mine[0], mine[-1]))
    return out


def te_rows(protocol: Protocol) -> list[Row]:
    """SDTM TE: one element per epoch (visitplan protocols have one arm, one element an epoch).

    TEDUR is given only when the next element starts a fixed offset after this one starts
    (its first visit is anchored on this element's first visit); otherwise it is null.
    """
    etcd = _etcds(protocol)
    names = {e.code: e.name for e in protocol.epochs}
    bounds = _epoch_bounds(protocol)
    rows = []
    for i, (code, first, last) in enumerate(bounds):
        nxt = bounds[i + 1][1] if i + 1 < len(bounds) else None
        dur = ""
        if nxt is not None and nxt.occurrence in (None, 1):
            nv = protocol.visit(nxt.base_code)
            a = nv.anchor
            on_first = (a.kind is AnchorKind.VISIT and a.visit == first.base_code) or (
                a.kind is AnchorKind.SCREENING and first.base_code == protocol.screening_visit
            )
            if on_first and nv.offset.value > 0 and nv.wait_for is None:
                dur = iso_duration(nv.offset)
        rows.append(
            {
                "STUDYID": studyid(protocol),
                "DOMAIN": "TE",
                "ETCD": etcd[code],
                "ELEMENT": names[code],
                "TESTRL": f"Start of visit {first.code} ({first.name})",
                "TEENRL": (
                    f"Start of visit {nxt.code} ({nxt.name})"
                    if nxt is not None
                    else f"End of visit {last.code} ({last.name})"
                ),
                "TEDUR": dur,
            }
        )
    return rows


def ta_rows(protocol: Protocol, *, armcd: str | None = None, arm: str | None = None) -> list[Row]:
    """SDTM TA: the single arm's elements in order (no branches; see docs/cdisc.md)."""
    default_cd, default_name = default_arm(protocol)
    armcd = armcd or default_cd
    if len(armcd) > _ARMCD_MAX:
        raise VisitplanError(
            "ARMCD", armcd, _("must be at most {ARMCD_MAX} characters").format(ARMCD_MAX=_ARMCD_MAX)
        )
    etcd = _etcds(protocol)
    names = {e.code: e.name for e in protocol.epochs}
    epochs = {e.code: epoch_value(e) for e in protocol.epochs}
    return [
        {
            "STUDYID": studyid(protocol),
            "DOMAIN": "TA",
            "ARMCD": armcd,
            "ARM": arm or default_name,
            "TAETORD": str(i),
            "ETCD": etcd[code],
            "ELEMENT": names[code],
            "TABRANCH": "",
            "TATRANS": "",
            "EPOCH": epochs[code],
        }
        for i, (code, _, _) in enumerate(_epoch_bounds(protocol), start=1)
    ]


# -- SDTM subject visits ------------------------------------------------------------------------
def sv_rows(
    protocol: Protocol,
    participants: Sequence[Participant],
    schedules: Sequence[Schedule],
    unscheduled: Iterable[UnscheduledVisit] = (),
) -> list[Row]:
    """SDTM SV from the engine's schedules (a pure function; nothing is read or written).

    Visits done give SVOCCUR=Y with their actual date; visits missed or cancelled give SVOCCUR=N
    and the reason in SVREASOC; visits still to come are not subject visits and are left out.
    Planned visits have SVPRESP=Y. SVSTDY is the engine's study day (Day 1 = first dose, no Day
    0), null while Day 1 has not happened. Unscheduled visits get VISITNUM = the VISITNUM of the
    last visit on or before them + .01, .02, ...
    """
    if len(participants) != len(schedules):
        raise VisitplanError(
            "schedules",
            len(schedules),
            _("must be one per participant ({count})").format(count=len(participants)),
        )
    extra: dict[str, list[UnscheduledVisit]] = {}
    for u in unscheduled:
        extra.setdefault(u.participant, []).append(u)
    known = {p.code for p in participants}
    for code in extra:
        if code not in known:
            raise VisitplanError("unscheduled visit participant", code, _("is not in the roster"))
    sid = studyid(protocol)
    epochs = {e.code: epoch_value(e) for e in protocol.epochs}
    rows: list[tuple[str, float, Row]] = []
    for person, schedule in zip(participants, schedules, strict=True):
        if schedule.participant != person.code:
            raise VisitplanError(
                "schedule",
                schedule.participant,
                _("does not belong to participant {code}").format(code=person.code),
            )
        usubjid = f"{sid}-{person.code}"
        day1_done = any(
            v.code == protocol.day1_visit and v.status is VisitStatus.DONE for v in schedule
        )
        for v in schedule.visits:
            if v.status is VisitStatus.PLANNED:
                continue
            num = visitnum(protocol, v.base_code or v.code, v.occurrence)
            done = v.status is VisitStatus.DONE and v.actual is not None
            reason = "" if done else (v.reason or v.status.value)
            day = str(v.study_day) if done and day1_done else ""
            when = v.actual.isoformat() if done and v.actual else ""
            rows.append(
                (
                    usubjid,
                    float(num),
                    _sv(sid, usubjid, str(num), v.name, when, day, "Y", "Y" if done else "N")
                    | {"SVREASOC": reason, "EPOCH": epochs[v.epoch.code]},
                )
            )
        unplanned = _number_unscheduled(protocol, schedule, extra.get(person.code, []))
        for k_by_prev, epoch, u in unplanned:
            day = str(study_day(u.date, schedule.day1)) if day1_done else ""
            rows.append(
                (
                    usubjid,
                    float(k_by_prev),
                    _sv(sid, usubjid, k_by_prev, "Unscheduled", u.date.isoformat(), day, "", "")
                    | {
                        "VISIT": f"Unscheduled {k_by_prev}",
                        "SVUPDES": u.reason or "",
                        "EPOCH": epochs[epoch] if epoch else "",
                    },
                )
            )
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r for _, _, r in rows]


def _sv(
    sid: str, usubjid: str, num: str, name: str, when: str, day: str, presp: str, occur: str
) -> Row:
    return {
        "STUDYID": sid,
        "DOMAIN": "SV",
        "USUBJID": usubjid,
        "VISITNUM": num,
        "VISIT": name,
        "SVSTDTC": when,
        "SVENDTC": when,
        "SVSTDY": day,
        "SVENDY": day,
        "SVPRESP": presp,
        "SVOCCUR": occur,
        "SVREASOC": "",
        "EPOCH": "",
        "SVUPDES": "",
    }


def _number_unscheduled(
    protocol: Protocol, schedule: Schedule, visits: list[UnscheduledVisit]
) -> list[tuple[str, str | None, UnscheduledVisit]]:
    """Decimal VISITNUMs: the last planned visit on or before the date, then .01, .02, ...

    Each comes with the epoch it happened in: that of the same planned visit.
    """
    out = []
    counts: dict[int, int] = {}
    for u in sorted(visits, key=lambda u: u.date):
        before = [
            (visitnum(protocol, v.base_code or v.code, v.occurrence), v.epoch.code)
            for v in schedule.visits
            if v.date <= u.date
        ]
        prev, epoch = max(before) if before else (0, None)
        counts[prev] = counts.get(prev, 0) + 1
        if counts[prev] >= 100:
            raise VisitplanError(
                "unscheduled visits", u.date.isoformat(), _("at most 99 after one planned visit")
            )
        out.append((f"{prev}.{counts[prev]:02d}", epoch, u))
    return out


def to_csv(
    rows: Iterable[Mapping[str, str]], columns: Sequence[str], *, excel: bool = False
) -> str:
    """Rows as CSV with the CDISC variable names as header; cells are formula-safe."""
    from visitplan import csvfile

    return csvfile.to_csv(columns, ([row.get(c, "") for c in columns] for row in rows), excel=excel)
