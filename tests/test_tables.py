"""Every terminal table stays whole at 60, 80 and 120 columns and when piped (issue 17, item 10).

A real roster (enrolments, visits done and missed, an appointment, an unscheduled visit, a
long reason, feeds, a login) is printed by each table command; every code, date, window,
study day and time the command's JSON holds must come back whole from the text (a token of
one line, parsed back), every date-like token printed must parse, nothing is cut short
("…") and no line is wider than the width. Piped, without $COLUMNS, the width is 80 whatever
is behind the pipe (a real process, stdout a pipe).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from visitplan.cli import cli

TODAY = "2022-11-10"
WIDTHS = (60, 80, 120)
ZONE = "Europe/Paris"
BIN = Path(sys.executable).with_name("visitplan")
LONG_REASON = (
    "participant ill with a fever that lasted nearly two weeks; the coordinator could not "
    "reach her before the window closed"
)

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
WINDOW = re.compile(rf"({DATE.pattern})\.\.({DATE.pattern})")
TIME = re.compile(r"\d{2}:\d{2}(:\d{2})?")


def invoke(db: Path, *args: str, columns: int | None, input: str | None = None) -> str:
    env = {"VISITPLAN_DB": str(db), "COLUMNS": None if columns is None else str(columns)}
    r = CliRunner(env=env).invoke(cli, list(args), input=input)
    assert r.exit_code == 0, r.output
    return str(r.stdout)


@pytest.fixture(scope="module")
def roster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("tables") / "site.db"

    def do(*args: str, input: str | None = None) -> None:
        invoke(db, *args, "--today", TODAY, columns=120, input=input)

    do("enroll", "1001", "--screening", "2022-07-27", "--flag", "hbcab_positive")
    do("enroll", "1002", "--screening", "2022-01-10", "--site", "BREST")
    do("enroll", "1003", "--screening", "2022-10-20", "--flag", "wocbp")
    do("enroll", "SUBJ-0042.b", "--screening", "2022-09-01")
    do("record", "1001", "D1", "--date", "2022-08-31", "--time", "09:30")
    do("record", "1001", "W4", "--date", "2022-09-28")
    do("record", "1001", "W8", "--status", "missed", "--reason", LONG_REASON)
    do("record", "1001", "--unscheduled", "--date", "2022-10-03", "--reason", "rash")
    do("record", "1001", "--bcell", "180", "--baseline", "--date", "2022-07-27")
    for visit, day in (("D1", "2022-02-01"), ("W4", "2022-03-01"), ("W8", "2022-03-29"),
                       ("W12", "2022-04-26"), ("W16", "2022-05-24"), ("W20", "2022-06-21"),
                       ("EOT", "2022-08-05")):  # fmt: skip
        do("record", "1002", visit, "--date", day)
    do("record", "SUBJ-0042.b", "D1", "--date", "2022-10-06")
    do("book", "1001", "W12", "2022-11-22", "09:30")
    do("book", "SUBJ-0042.b", "W8", "2022-12-01", "14:15")
    do("feed", "create", "--name", "front desk tablet in the screening room")
    do("feed", "create", "--name", "dr-martin", "--participant", "1001")
    do("user", "add", "coordinator.brest", "--role", "coordinator", "--password-stdin",
       input="correct horse battery\n")  # fmt: skip
    return db


def tokens(text: str) -> set[str]:
    """Every whitespace-separated token of every line, borders and punctuation around it off."""
    found = set()
    for line in text.splitlines():
        for raw in re.split(r"[\s│┃]+", line):
            token = raw.strip(",;()?!:")
            if token:
                found.add(token)
    return found


def assert_whole(text: str, width: int, expected: set[str]) -> None:
    """No line wider than ``width``, nothing cut short, every date-like token a real date,
    window or time, and every ``expected`` value a whole token of one line."""
    assert text.strip(), "nothing printed"
    assert "…" not in text, text
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide
    found = tokens(text)
    for token in found:
        if re.match(r"\d{4}-\d", token):
            window = WINDOW.fullmatch(token)
            if window:
                first, last = (dt.date.fromisoformat(g) for g in window.groups())
                assert first <= last, token
            else:
                assert DATE.fullmatch(token), f"cut date {token!r} in:\n{text}"
                dt.date.fromisoformat(token)
        if re.match(r"\d{1,2}:\d", token) and "-" not in token:
            assert TIME.fullmatch(token), f"cut time {token!r} in:\n{text}"
    missing = {e for e in expected if e not in found}
    assert not missing, f"not whole: {sorted(missing)} in:\n{text}"


def local(at: str, time: str = "HH:mm") -> tuple[str, str]:
    """A stored UTC time as the tables show it: the site's date and time."""
    import pendulum

    when = pendulum.parse(at)
    assert isinstance(when, pendulum.DateTime)
    here = when.in_timezone(ZONE)
    return here.format("YYYY-MM-DD"), here.format(time)


def window(earliest: str | None, latest: str | None) -> set[str]:
    if earliest is None or latest is None:
        return set()
    return {earliest} if earliest == latest else {f"{earliest}..{latest}"}


# -- what each table must show whole, from its JSON --------------------------------------------


def due_values(doc: dict[str, Any]) -> set[str]:
    out = set()
    for d in doc["due"]:
        out |= {d["participant"], d["visit"], d["target"], str(d["study_day"])}
        out |= window(d["earliest"], d["latest"])
        if d["appointment"]:
            out |= {d["appointment"]["date"], d["appointment"]["time"]}
    return out


def finding_values(key: str) -> Callable[[dict[str, Any]], set[str]]:
    def values(doc: dict[str, Any]) -> set[str]:
        out = set()
        for d in doc[key]:
            out |= {d["participant"], d["visit"], d["kind"]}
            out |= window(d["earliest"], d["latest"]) if d["earliest"] != d["latest"] else set()
        return out

    return values


def history_values(doc: dict[str, Any]) -> set[str]:
    out = set()
    for h in doc["history"]:
        out |= {str(h["id"]), *local(h["at"], "HH:mm:ss"), h["action"], h["field"]}
    return out


def show_values(doc: dict[str, Any]) -> set[str]:
    out = set()
    for v in doc["visits"]:
        out |= {v["code"], v["target"], str(v["study_day"])}
        if v["earliest"] != v["latest"]:
            out.add(f"{v['earliest']}..{v['latest']}")
        if v["actual"]:
            out.add(v["actual"])
    for m in doc["milestones"]:
        out |= {m["code"], m["date"]}
    return out


def agenda_values(doc: dict[str, Any]) -> set[str]:
    out = set()
    for d in doc["days"]:
        out.add(d["date"])
        for v in d["visits"]:
            out |= {v["participant"], v["visit"], f"{v['earliest']}..{v['latest']}"}
            out |= set(v["open_days"][:3])
            if v["time"]:
                out.add(v["time"])
    for p in doc["proposals"] or []:
        if p["moved"]:
            out |= {p["participant"], p["visit"], p["target"]}
            if p["day"]:
                out.add(p["day"])
    return out


def eligibility_values(doc: dict[str, Any]) -> set[str]:
    out = set()
    for c in doc["rules"]:
        out |= {c["code"], c["date"]} | (set() if c["ok"] else {c["binds"]})
        out |= {d for d in (c["last_exposure"], c["earliest"]) if d}
    return out


def feed_values(doc: dict[str, Any]) -> set[str]:
    out = set()
    for f in doc["feeds"]:
        out.add(f["participant"] or "site")
        out |= set(local(f["created_at"]))
    return out


def user_values(doc: dict[str, Any]) -> set[str]:
    return {v for u in doc["users"] for v in (u["name"], u["role"], *local(u["created_at"]))}


HISTORY_FILE = (
    "rule,what,last_dose,last_change,half_life\n"
    "investigational,drug X with a rather long name,2022-07-15,,10 days\n"
    "bcell_depleting,rituximab,2021-12-20,,\n"
    "live_vaccine,MMR,2022-07-20,,\n"
)
AGENDA = ("agenda", "--from", "2022-10-01", "--to", "2022-12-31", "--propose")

#: (name, arguments, values from the JSON): every table of the CLI.
TABLES: list[tuple[str, tuple[str, ...], Callable[[dict[str, Any]], set[str]]]] = [
    ("due", ("due", "--days", "60"), due_values),
    ("overdue", ("overdue",), finding_values("overdue")),
    ("deviations", ("deviations",), finding_values("deviations")),
    ("history", ("history", "1001"), history_values),
    ("show", ("show", "1001"), show_values),
    ("agenda", AGENDA, agenda_values),
    (
        "eligibility",
        (
            "eligibility",
            "--screening",
            "2022-07-27",
            "--day1",
            "2022-08-01",
            "--history",
            "{history}",
        ),
        eligibility_values,
    ),
    ("feed list", ("feed", "list"), feed_values),
    ("user list", ("user", "list"), user_values),
]


def arguments(args: tuple[str, ...], tmp: Path) -> list[str]:
    history = tmp / "history.csv"
    history.write_text(HISTORY_FILE, encoding="utf-8")
    out = [a.replace("{history}", str(history)) for a in args]
    return out + ([] if out[0] == "eligibility" else ["--today", TODAY])


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("name", "args", "values"), TABLES, ids=[t[0] for t in TABLES])
def test_every_table_keeps_its_values_whole(roster, tmp_path, name, args, values, width):
    argv = arguments(args, tmp_path)
    doc = json.loads(invoke(roster, *argv, "--format", "json", columns=width))
    expected = values(doc)
    assert expected, f"{name}: the roster gives the table nothing to show"
    assert_whole(invoke(roster, *argv, columns=width), width, expected)


@pytest.mark.parametrize(("name", "args", "values"), TABLES, ids=[t[0] for t in TABLES])
def test_every_table_piped_is_80_columns_wide(roster, tmp_path, name, args, values):
    argv = arguments(args, tmp_path)
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "visitplan"]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["VISITPLAN_DB"] = str(roster)
    r = subprocess.run([*cmd, *argv], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(invoke(roster, *argv, "--format", "json", columns=None))
    assert_whole(r.stdout, 80, values(doc))
    # The same text as at 80 columns, whatever terminal the test runs in.
    assert r.stdout == invoke(roster, *argv, columns=80)


def activity_values(width: int) -> set[str]:
    import visitplan
    from visitplan.export.cdisc import planned_study_days

    study = visitplan.builtin("NCT05124925")
    days = planned_study_days(study)
    out = {v.epoch for v in study.visits} | {v.code for v in study.visits}
    out |= {str(days[v.code]) for v in study.visits if days.get(v.code) is not None}
    out |= {p.code for v in study.visits for p in v.procedures}
    return out | {"±3d", "±7d", "-34d/+0d"}


@pytest.mark.parametrize("width", [*WIDTHS, 200])
def test_the_schedule_of_activities_keeps_its_values_whole(width):
    r = CliRunner(env={"COLUMNS": str(width)}).invoke(cli, ["protocol", "show"])
    assert r.exit_code == 0, r.output
    assert_whole(r.stdout, width, activity_values(width))
    lines = r.stdout.splitlines()
    if width >= 200:  # visits as columns: a row of codes
        assert any(line.split("┃")[2:4] == ["    SCR    ", "         D1          "]
                   for line in lines)  # fmt: skip
    else:  # one row (or block) a visit
        assert not any("┃    SCR    ┃" in line for line in lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_plan_keeps_its_values_whole(width):
    args = ["plan", "--participant", "1001", "--screening", "2022-07-27", "--day1", "2022-08-30",
            "--flag", "wocbp"]  # fmt: skip
    doc = json.loads(CliRunner().invoke(cli, [*args, "--format", "json"]).stdout)
    r = CliRunner(env={"COLUMNS": str(width)}).invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert_whole(r.stdout, width, show_values(doc))


# -- the layouts -------------------------------------------------------------------------------


def test_the_layout_narrows_step_by_step(roster):
    """Borders at 120, none at 80 (text wrapped), one record per block at 60."""
    wide = invoke(roster, "deviations", "--today", TODAY, columns=120)
    assert "┃ Participant ┃" in wide
    plain = invoke(roster, "deviations", "--today", TODAY, columns=80)
    assert "┃" not in plain and plain.splitlines()[1].split()[:2] == ["Participant", "Visit"]
    blocks = invoke(roster, "due", "--days", "60", "--today", TODAY, columns=60)
    assert "Participant: 1001" in [" ".join(line.split()) for line in blocks.splitlines()]


def test_a_decoration_column_goes_before_a_value_is_wrapped():
    from io import StringIO

    from rich.console import Console

    from visitplan.cli.render import Column, print_table

    columns = (Column("Code"), Column("When", "words"), Column("Window"),
               Column("Kind", "words", decoration=True))  # fmt: skip
    rows = [["W4", "2022-11-22 09:30", "2022-11-20..2022-11-26", "a-long-decoration"]]

    def shown(width: int) -> list[str]:
        out = StringIO()
        print_table("T", columns, rows, Console(file=out, width=width))
        return out.getvalue().splitlines()

    assert "┃ Kind              ┃" in shown(80)[2]  # room for all, with borders
    # No room for the borders and the decoration: both go, the values stay on one line...
    assert shown(60)[1:] == [
        "Code When             Window",
        "W4   2022-11-22 09:30 2022-11-20..2022-11-26",
    ]
    # ...then a date and its time on two, each whole...
    assert shown(40)[1:] == [
        "Code When         Window",
        "W4   2022-11-22   2022-11-20..2022-11-26",
        "     09:30",
    ]
    # ...then one record per block.
    assert shown(30)[1:] == [
        "Code:   W4",
        "When:   2022-11-22 09:30",
        "Window: 2022-11-20..2022-11-26",
    ]


def test_user_text_in_a_table_is_printed_escaped(roster):
    """Cells of user text go through cell_text: control characters neutralised, no markup."""
    db = roster.with_name("escaped.db")
    invoke(db, "enroll", "E1", "--screening", "2022-07-27", "--today", TODAY, columns=80)
    invoke(db, "record", "E1", "W4", "--status", "missed", "--reason", "ill\x1b[2J[/b]\r=1",
           "--today", TODAY, columns=80)  # fmt: skip
    for width in (60, 120):
        text = invoke(db, "history", "E1", "--today", TODAY, columns=width)
        assert "\x1b" not in text and "\r" not in text
        assert "ill\\x1b[2J[/b]\\r=1" in text
