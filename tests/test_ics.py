"""iCalendar export: events, UIDs, SEQUENCE on re-export, alarms, zones, escaping, privacy."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import attrs
import icalendar
import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import visitplan
from visitplan import Participant, Record, Status, VisitplanError
from visitplan.dates import local_datetime
from visitplan.export.ics import EventState, Reminders, read_state, to_ical, uid
from visitplan.export.vtimezone import vtimezone
from visitplan.model import ProcedureKind, Site

STAMP = pendulum.datetime(2026, 1, 1, tz="UTC")
HOSTILE = "x\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil\r\nSUMMARY:injected"


def events(data: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(data).walk("VEVENT"))


def by_uid(data: bytes) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in events(data)}


def export(study, *schedules, **kwargs) -> bytes:
    kwargs.setdefault("dtstamp", STAMP)
    return to_ical(study, schedules, **kwargs)


@pytest.fixture(scope="module")
def p1001() -> Participant:
    return Participant("1001", screening="2022-07-27")


def test_one_event_per_visit_with_stable_readable_uids(study, p1001):
    s = study.plan(p1001)
    found = by_uid(export(study, s))
    assert list(found) == [f"NCT05124925-1001-{v.code}@visitplan" for v in s.visits]
    # The UID depends on study, participant and visit code only, never on dates or facts.
    later = study.plan(attrs.evolve(p1001, screening=pendulum.date(2023, 3, 1)))
    assert list(by_uid(export(study, later))) == list(found)


def test_uid_pieces_are_escaped_so_separators_cannot_collide():
    assert uid("S", "a-b", "c") != uid("S", "a", "b-c")
    assert uid("S", "1001", "W4") == "S-1001-W4@visitplan"
    assert uid("S", "1001", "W4", "window") == "S-1001-W4-window@visitplan"
    assert uid("S", "a-b", "c") == "S-a%2Db-c@visitplan"


def test_all_day_events_on_the_visit_date_with_exclusive_dtend(study, p1001):
    s = study.plan(p1001.done("D1", "2022-08-29"))
    found = by_uid(export(study, s))
    for v in s.visits:
        e = found[uid("NCT05124925", "1001", v.code)]
        start, end = e["DTSTART"], e["DTEND"]
        assert start.params["VALUE"] == "DATE" and end.params["VALUE"] == "DATE"
        assert start.dt == v.date and end.dt == v.date + dt.timedelta(days=1)
        assert str(e["TRANSP"]) == "TRANSPARENT"
    assert found[uid("NCT05124925", "1001", "D1")]["DTSTART"].dt == dt.date(2022, 8, 29)


def test_status_tentative_cancelled_confirmed(study):
    person = Participant(
        "1002",
        screening="2022-07-27",
        records=[Record("W8", None, Status.CANCELLED, reason="site closed")],
    )
    s = study.plan(person)
    found = by_uid(export(study, s))
    status = {str(e["UID"]).split("-")[2].split("@")[0]: str(e["STATUS"]) for e in found.values()}
    assert s.visit("EOS").tentative
    assert status["EOS"] == "TENTATIVE"
    assert status["W8"] == "CANCELLED"
    assert {status[c] for c in ("SCR", "D1", "W4", "EOT", "FU1")} == {"CONFIRMED"}
    w8 = found[uid("NCT05124925", "1002", "W8")]
    assert "\nCancelled\n" in str(w8["DESCRIPTION"])
    assert "site closed" not in str(w8["DESCRIPTION"])  # free text about them stays out
    assert "(cancelled)" in str(w8["SUMMARY"])
    assert "tentative" in str(found[uid("NCT05124925", "1002", "EOS")]["SUMMARY"])


def test_description_summary_and_categories(study, p1001):
    s = study.plan(p1001)
    found = by_uid(export(study, s))
    w4 = found[uid("NCT05124925", "1001", "W4")]
    text = str(w4["DESCRIPTION"])
    assert "window 2022-09-25 to 2022-10-01" in text
    assert "Study day 29" in text
    assert "ianalumab 300 mg s.c. as 2 injections of 150 mg/1 mL" in text
    assert text.startswith("Study NCT05124925, visit W4: Dose 2 (dosing, Treatment)\n")
    # The participant and the site are the SUMMARY and the LOCATION; the drug is named once.
    assert "1001" not in text and "Brest" not in text and "Ianalumab:" not in text
    assert str(w4["SUMMARY"]) == "1001 W4 Dose 2"
    assert w4["CATEGORIES"].cats == ["dosing"]
    eot = found[uid("NCT05124925", "1001", "EOT")]
    assert eot["CATEGORIES"].cats == ["biopsy"]
    assert "Labial minor salivary gland biopsy" in str(eot["DESCRIPTION"])
    eos = str(found[uid("NCT05124925", "1001", "EOS")]["DESCRIPTION"])
    assert "Tentative: the date waits for an event" in eos


def triggers(event: icalendar.Event) -> list[dt.timedelta]:
    return [a["TRIGGER"].dt for a in event.walk("VALARM")]


def test_default_alarms_day_before_and_a_week_before_biopsies(study, p1001):
    s = study.plan(p1001.done("D1", "2022-08-31"))
    found = by_uid(export(study, s))
    assert triggers(found[uid("NCT05124925", "1001", "W4")]) == [-dt.timedelta(days=1)]
    assert triggers(found[uid("NCT05124925", "1001", "EOT")]) == [
        -dt.timedelta(days=7),
        -dt.timedelta(days=1),
    ]
    assert triggers(found[uid("NCT05124925", "1001", "D1")]) == []  # done: nothing to remind
    for alarm in found[uid("NCT05124925", "1001", "EOT")].walk("VALARM"):
        assert str(alarm["ACTION"]) == "DISPLAY" and str(alarm["DESCRIPTION"])


def test_alarms_are_configurable_and_can_be_switched_off(study, p1001):
    s = study.plan(p1001)
    custom = Reminders(
        lead=[dt.timedelta(hours=2)],
        long_lead=[dt.timedelta(days=14)],
        long_lead_for={ProcedureKind.DOSE},
    )
    found = by_uid(export(study, s, reminders=custom))
    assert triggers(found[uid("NCT05124925", "1001", "W4")]) == [
        -dt.timedelta(days=14),
        -dt.timedelta(hours=2),
    ]
    assert triggers(found[uid("NCT05124925", "1001", "EOT")]) == [-dt.timedelta(hours=2)]
    assert b"VALARM" not in export(study, s, reminders=None)
    assert b"VALARM" not in export(study, s, reminders=Reminders(lead=(), long_lead=()))
    with pytest.raises(VisitplanError, match=r"reminders\.lead"):
        Reminders(lead=[dt.timedelta(days=-1)])


def test_dtstamp_makes_output_reproducible(study, p1001):
    s = study.plan(p1001)
    assert export(study, s) == export(study, s)
    assert b"DTSTAMP:20260101T000000Z" in export(study, s)
    other = export(study, s, dtstamp=pendulum.datetime(2026, 1, 2, tz="Europe/Paris"))
    assert b"DTSTAMP:20260101T230000Z" in other
    with pytest.raises(VisitplanError, match="dtstamp"):
        export(study, s, dtstamp=dt.datetime(2026, 1, 1))


def test_calendar_properties_and_no_personal_data(study):
    s = study.plan(Participant("1003", screening="2023-01-31", flags={"wocbp"}))
    data = export(study, s)
    cal = icalendar.Calendar.from_ical(data)
    assert str(cal["VERSION"]) == "2.0" and str(cal["PRODID"])
    assert str(cal["X-WR-CALNAME"]) == str(cal["NAME"]) == "NCT05124925 participant 1003"
    for forbidden in (b"METHOD", b"ORGANIZER", b"ATTENDEE", b"CONTACT", b"wocbp"):
        assert forbidden not in data
    # Participants appear only by study code: every SUMMARY starts with it, nothing else.
    for e in events(data):
        assert str(e["SUMMARY"]).startswith("1003 ")
    named = export(study, s, name="Études, Brest; 2023")
    assert str(icalendar.Calendar.from_ical(named)["X-WR-CALNAME"]) == "Études, Brest; 2023"


def test_site_calendar_holds_everyone_once(study):
    people = [
        Participant("1001", screening="2022-07-27", site="BREST"),
        Participant("1002", screening="2022-09-12", site="BREST"),
    ]
    schedules = [study.plan(p) for p in people]
    data = export(study, *schedules)
    uids = [str(e["UID"]) for e in events(data)]
    assert len(uids) == len(set(uids)) == sum(len(s) for s in schedules)
    assert str(icalendar.Calendar.from_ical(data)["NAME"]) == "NCT05124925 site BREST"
    with pytest.raises(VisitplanError, match="appears twice"):
        export(study, schedules[0], schedules[0])


def test_appointment_is_a_timed_event_in_the_site_zone(study, p1001):
    s = study.plan(p1001)
    summer = local_datetime(s.visit("W4").target, "09:30", "Europe/Paris")
    # A fixed offset has no TZID a client can resolve: the instant is kept, in the named zone.
    winter_fixed = pendulum.parse("2022-11-23T14:00:00+01:00")
    data = export(study, s, appointments={("1001", "W4"): summer, ("1001", "W12"): winter_fixed})
    found = by_uid(data)
    w4, w12 = found[uid("NCT05124925", "1001", "W4")], found[uid("NCT05124925", "1001", "W12")]
    assert w4["DTSTART"].params["TZID"] == "Europe/Paris"
    assert w4["DTSTART"].to_ical() == b"20220928T093000"
    assert w4["DTEND"].to_ical() == b"20220928T103000"
    assert w12["DTSTART"].params["TZID"] == "Europe/Paris"
    assert w12["DTSTART"].to_ical() == b"20221123T140000"
    assert str(w4["TRANSP"]) == "OPAQUE"
    assert b"TZID=+01:00" not in data
    assert data.count(b"BEGIN:VTIMEZONE") == 1
    longer = by_uid(
        export(study, s, appointments={("1001", "W4"): summer}, duration=dt.timedelta(hours=3))
    )
    assert longer[uid("NCT05124925", "1001", "W4")]["DTEND"].to_ical() == b"20220928T123000"


def test_no_vtimezone_without_timed_events(study, p1001):
    assert b"VTIMEZONE" not in export(study, study.plan(p1001))


@pytest.mark.parametrize(
    ("key", "when", "message"),
    [
        (("1001", "W4"), dt.datetime(2022, 9, 28, 9, 30), "must be a date and time with a time"),
        (("1001", "X9"), pendulum.datetime(2022, 9, 28, 9), "names no visit"),
        (("9999", "W4"), pendulum.datetime(2022, 9, 28, 9), "names no visit"),
    ],
)
def test_bad_appointments_are_refused(study, p1001, key, when, message):
    with pytest.raises(VisitplanError, match=message):
        export(study, study.plan(p1001), appointments={key: when})


def test_vtimezone_is_rule_based_from_the_tz_data():
    paris = vtimezone("Europe/Paris").to_ical().decode()
    assert "RDATE" not in paris
    assert "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3" in paris
    assert "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10" in paris
    ny = vtimezone("America/New_York").to_ical().decode()
    assert "BYDAY=2SU;BYMONTH=3" in ny and "BYDAY=1SU;BYMONTH=11" in ny
    tokyo = vtimezone("Asia/Tokyo").to_ical().decode()
    assert "RRULE" not in tokyo and "TZOFFSETTO:+0900" in tokyo and "DAYLIGHT" not in tokyo
    with pytest.raises(VisitplanError, match="not a known IANA time zone"):
        vtimezone("Europe/Atlantis")


def test_an_instant_before_the_zone_last_changed_its_rules_is_refused(study):
    # Moscow kept summer time until 2011; its current rule (MSK all year) would be wrong then.
    moscow = attrs.evolve(study, sites=(Site("MOW", "Moscou", "Europe/Moscow", "RU"),))
    s = moscow.plan(Participant("1001", screening="2010-05-01"))
    when = local_datetime(s.visit("W4").target, "10:00", "Europe/Moscow")
    with pytest.raises(VisitplanError, match="current daylight-saving rule"):
        export(moscow, s, appointments={("1001", "W4"): when})
    recent = moscow.plan(Participant("1001", screening="2025-05-01"))
    ok = local_datetime(recent.visit("W4").target, "10:00", "Europe/Moscow")
    assert b"TZID=Europe/Moscow" in export(moscow, recent, appointments={("1001", "W4"): ok})


def test_window_spans_are_their_own_all_day_events(study, p1001):
    s = study.plan(p1001)
    found = by_uid(export(study, s, window_spans=True))
    span = found[uid("NCT05124925", "1001", "W4", "window")]
    assert span["DTSTART"].dt == dt.date(2022, 9, 25)
    assert span["DTEND"].dt == dt.date(2022, 10, 2)  # latest 1 October, exclusive
    assert str(span["TRANSP"]) == "TRANSPARENT"
    assert triggers(span) == []
    assert uid("NCT05124925", "1001", "SCR", "window") not in found  # no window to show
    assert uid("NCT05124925", "1001", "W4", "window") not in by_uid(export(study, s))


def test_hostile_text_cannot_inject_properties_or_components(study):
    site = Site("BREST", f"Hôpital Morvan, CHU; Brest {HOSTILE}", "Europe/Paris", "FR")
    hostile = attrs.evolve(study, sites=(site,))
    person = Participant(
        "1001",
        screening="2022-07-27",
        records=[Record("W8", None, Status.CANCELLED, reason=f"grève; \\ {HOSTILE}")],
    )
    s = hostile.plan(person)
    data = export(hostile, s, window_spans=True)
    parsed = events(data)
    assert len(parsed) == len(s.visits) + sum(
        1 for v in s.visits if v.open and v.earliest != v.latest
    )
    assert "evil" not in {str(e["UID"]) for e in parsed}
    assert not re.search(rb"\r\n(END:VEVENT\r\nBEGIN:VEVENT\r\nUID:evil|SUMMARY:injected)", data)
    w8 = next(e for e in parsed if str(e["UID"]) == uid("NCT05124925", "1001", "W8"))
    expected_site = site.name.replace("\r\n", "\n")
    assert str(w8["LOCATION"]) == expected_site
    assert "grève" not in str(w8["DESCRIPTION"])  # reasons never reach a calendar
    assert "Hôpital".encode() in data  # UTF-8, not mangled


def test_reexport_after_a_replan_updates_instead_of_duplicating(study, p1001):
    first = export(study, study.plan(p1001))
    state = read_state(first)
    assert {s.sequence for s in state.values()} == {0}
    # Re-plan: Day 1 happened two days early, W8 was cancelled; nothing else about SCR changed.
    replanned = p1001.done("D1", "2022-08-29").with_record(
        Record("W8", None, Status.CANCELLED, reason="holiday")
    )
    s2 = study.plan(replanned)
    second = export(study, s2, previous=state, dtstamp=STAMP.add(days=3))
    new = read_state(second)
    assert set(new) == set(state)  # same UIDs, none added, none lost
    uids = [str(e["UID"]) for e in events(second)]
    assert len(uids) == len(set(uids))
    changed = {u for u in state if state[u].fingerprint != new[u].fingerprint}
    assert uid("NCT05124925", "1001", "SCR") not in changed
    assert uid("NCT05124925", "1001", "W4") in changed
    for u in state:
        assert new[u].sequence == (1 if u in changed else 0), u
    w8 = by_uid(second)[uid("NCT05124925", "1001", "W8")]
    assert str(w8["STATUS"]) == "CANCELLED" and int(w8["SEQUENCE"]) == 1
    # Exporting the same plan again changes no SEQUENCE; a further change raises it to 2.
    third = read_state(export(study, s2, previous=new, dtstamp=STAMP.add(days=9)))
    assert third == new
    s3 = study.plan(replanned.done("W4", "2022-09-29"))
    fourth = read_state(export(study, s3, previous=third))
    assert fourth[uid("NCT05124925", "1001", "W4")].sequence == 2
    assert fourth[uid("NCT05124925", "1001", "SCR")].sequence == 0


def test_timed_and_all_day_changes_raise_sequence(study, p1001):
    s = study.plan(p1001)
    w4 = s.visit("W4").target
    at = {("1001", "W4"): local_datetime(w4, "09:30", "Europe/Paris")}
    base = read_state(export(study, s, appointments=at))
    moved = {("1001", "W4"): local_datetime(w4, "10:00", "Europe/Paris")}
    after = read_state(export(study, s, appointments=moved, previous=base))
    assert after[uid("NCT05124925", "1001", "W4")].sequence == 1
    same = read_state(export(study, s, appointments=at, previous=base))
    assert same == base
    bumped = {k: EventState(5, v.fingerprint) for k, v in base.items()}
    kept = read_state(export(study, s, appointments=at, previous=bumped))
    assert {v.sequence for v in kept.values()} == {5}


def test_read_state_refuses_what_is_not_a_calendar():
    with pytest.raises(VisitplanError, match="not iCalendar data"):
        read_state(b"hello, world")


def test_protocol_without_matching_site_is_refused(study):
    rule = r"^site 'NOPE': is not a site of NCT05124925; known: BREST$"
    with pytest.raises(VisitplanError, match=rule):  # planning refuses it first
        study.plan(Participant("1001", screening="2022-07-27", site="NOPE"))
    # A schedule made another way (or for another protocol) is refused by the export too.
    s = attrs.evolve(study.plan(Participant("1001", screening="2022-07-27")), site="NOPE")
    with pytest.raises(VisitplanError, match=rule):
        export(study, s)


def test_public_api_is_documented():
    for obj in (to_ical, read_state, EventState, Reminders, uid):
        assert obj.__doc__
    assert visitplan.builtin("NCT05124925").site.timezone == "Europe/Paris"


def test_an_instant_in_the_repeated_autumn_hour_is_refused(study, p1001):
    # 00:30 UTC on 30 October 2022 is 02:30 local the second time: RFC 5545 would read the
    # wall time as the first 02:30, an hour earlier, so the export refuses it.
    s = study.plan(p1001)
    when = pendulum.datetime(2022, 10, 30, 0, 30, tz="UTC")
    with pytest.raises(VisitplanError, match="happens twice"):
        export(study, s, appointments={("1001", "W8"): when})
    ok = pendulum.datetime(2022, 10, 30, 8, 0, tz="UTC")  # 09:00 CET
    found = by_uid(export(study, s, appointments={("1001", "W8"): ok}))
    assert found[uid("NCT05124925", "1001", "W8")]["DTSTART"].to_ical() == b"20221030T090000"
    with pytest.raises(VisitplanError, match="whole minute"):
        export(study, s, appointments={("1001", "W8"): ok.add(seconds=30)})


def test_each_vtimezone_is_a_fresh_component():
    first = vtimezone("Europe/Paris")
    first.add("X-CHANGED", "yes")
    assert "X-CHANGED" not in vtimezone("Europe/Paris")


@given(
    zone=st.sampled_from(
        [
            "Europe/Paris",
            "Europe/London",
            "America/New_York",
            "Australia/Sydney",
            "Pacific/Auckland",
            "Asia/Tokyo",
        ]
    ),
    instant=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2045, 12, 31)),
)
@settings(max_examples=300, deadline=None)
def test_rule_based_vtimezone_matches_the_tz_database_every_year(zone, instant):
    # Read the VTIMEZONE back with icalendar's RRULE evaluation and compare the offset of the
    # wall time with the tz database's, for any instant of the next two decades.
    real = instant.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(zone))
    wall = real.replace(tzinfo=None)
    tz = zoneinfo.ZoneInfo(zone)
    if wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset():
        return  # the repeated hour: refused for appointments, nothing to compare
    rules = vtimezone(zone).to_tz(lookup_tzid=False)
    assert wall.replace(tzinfo=rules).utcoffset() == real.utcoffset()


def test_milestones_are_all_day_events_that_follow_the_last_dose(study):
    p = Participant("1002", screening="2022-09-12", flags={"hbcab_positive", "wocbp"})
    s = study.plan(p)
    found = by_uid(export(study, s))
    proph = found["NCT05124925-1002-PROPHYLAXIS_END-milestone@visitplan"]
    contra = found["NCT05124925-1002-CONTRACEPTION_END-milestone@visitplan"]
    assert proph.decoded("DTSTART") == s.last_dose.add(months=12)
    assert contra.decoded("DTSTART") == s.last_dose.add(months=6)
    assert contra.decoded("DTEND") == s.last_dose.add(months=6).add(days=1)
    assert str(contra["STATUS"]) == "TENTATIVE"  # the last dose is still planned
    assert "milestone" in contra["CATEGORIES"].to_ical().decode()
    plain = by_uid(export(study, study.plan(Participant("1001", screening="2022-09-12"))))
    assert not [u for u in plain if u.endswith("-milestone@visitplan")]


def test_a_dose_is_described_without_repeating_a_drug_named_like_its_procedure():
    from visitplan.model import Dose, Procedure, ProcedureKind

    dose = Dose("ianalumab", 300, injections=2, presentation="150 mg/1 mL")
    named = Procedure("DOSE", "Ianalumab", ProcedureKind.DOSE, None, dose)
    other = Procedure("DOSE", "Study drug", ProcedureKind.DOSE, None, dose)
    assert named.describe() == "ianalumab 300 mg s.c. as 2 injections of 150 mg/1 mL"
    assert other.describe() == "Study drug: ianalumab 300 mg s.c. as 2 injections of 150 mg/1 mL"
    assert Procedure("EXAM", "Exam").describe() == "Exam"


# -- the serialiser against icalendar's own ------------------------------------------------------
# visitplan writes each event through icalendar's content lines but makes a shared line once and
# folds ASCII lines itself (docs/performance.md); the bytes must stay exactly icalendar's.
_FOLDABLE = st.text(
    alphabet=st.sampled_from([*"ab ,;:\\^n", "é", "漢", "🙂"]), min_size=0, max_size=400
)


@settings(max_examples=400, deadline=None)
@given(_FOLDABLE, st.integers(0, 80))
def test_lines_are_folded_exactly_as_icalendar_folds_them(text, pad):
    from icalendar.parser import Contentline

    from visitplan.export.ics.lines import _fold

    # Backslashes and carets land on every fold boundary as the padding shifts them.
    line = Contentline("DESCRIPTION:" + "x" * pad + text)
    assert _fold(line) == line.to_ical()


def test_long_ascii_lines_with_escapes_fold_as_icalendar_and_unfold_to_the_original():
    from icalendar.parser import Contentline

    from visitplan.export.ics.lines import _fold

    for pad in range(60, 80):
        line = Contentline("DESCRIPTION:" + "a" * pad + "\\n\\,\\;\\\\^n" * 30)
        folded = _fold(line)
        assert folded == line.to_ical()
        assert all(len(piece) <= 75 for piece in folded.split(b"\r\n"))
        assert folded.replace(b"\r\n ", b"").decode() == line


def _as_icalendar_writes_it(monkeypatch):
    from visitplan.export.ics import writer

    monkeypatch.setattr(writer, "_serialise", lambda component, known: component.to_ical(False))


@pytest.mark.parametrize("window_spans", [False, True])
def test_an_export_is_byte_for_byte_what_icalendar_writes(study, monkeypatch, window_spans):
    site = Site("BREST", f"Hôpital Morvan, CHU; Brest {HOSTILE}", "Europe/Paris", "FR")
    local = attrs.evolve(study, sites=(site,))
    people = [
        Participant("1001", screening="2022-07-27"),
        Participant(
            "1002",
            screening="2022-09-12",
            records=[Record("D1", "2022-10-10"), Record("W4", status=Status.MISSED)],
            flags={"wocbp"},
        ),
        Participant("1003", screening="2023-03-01", discontinued="2023-05-02"),
    ]
    schedules = [local.plan(p, today=pendulum.date(2023, 6, 1)) for p in people]
    when = local_datetime(schedules[0].visit("W4").target, "09:30", "Europe/Paris")
    options = {
        "appointments": {("1001", "W4"): when},
        "window_spans": window_spans,
        "previous": {uid(local.id, "1001", "W8"): EventState(3, "changed")},
        "name": "Brest, visites de l'étude",
    }
    ours = [export(local, *schedules, **options), export(local, *schedules, reminders=None)]
    # Twice: the second export takes every shared line from the cache the first one filled.
    assert export(local, *schedules, **options) == ours[0]
    _as_icalendar_writes_it(monkeypatch)
    assert ours == [export(local, *schedules, **options), export(local, *schedules, reminders=None)]
