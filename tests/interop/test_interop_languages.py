"""The same participant's calendar in French and in English, read by four parsers: ical.js
(Thunderbird's), icalendar, ical and vobject.

Every accent of the French texts must come back intact from each parser (RFC 5545 3.1 folds by
octets: a fold never splits a character), and the two languages' files must hold the same
events: same UIDs, dates, statuses and SEQUENCEs; only the human texts differ.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import icalendar
import pytest
from click.testing import CliRunner
from tests.interop.test_interop import HERE, read_ical, require

from visitplan.cli import cli

#: A participant with a booked dose (a timed event), a done visit, an open EOS (tentative),
#: window spans and the milestones: every kind of event and text the export writes.
ARGS = [
    "ics", "--participant", "1001", "--screening", "2027-01-04", "--day1", "2027-02-01",
    "--actual", "W4=2027-03-01", "--flag", "hbcab_positive",
    "--flag", "wocbp", "--appointment", "W12=2027-04-26T09:30", "--window-spans",
    "--dtstamp", "2027-01-01T00:00:00Z",
]  # fmt: skip


def export(lang: str, path: Path) -> bytes:
    result = CliRunner().invoke(cli, ["--lang", lang, *ARGS, "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path.read_bytes()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("languages")
    out = {}
    for lang in ("fr", "en"):
        out[lang] = folder / f"1001-{lang}.ics"
        export(lang, out[lang])
    return out


def read_icaljs_texts(path: Path) -> dict[str, dict[str, object]]:
    node = shutil.which("node")
    require(node is not None, "node (Node 20) is not on PATH")
    require((HERE / "node_modules" / "ical.js").is_dir(), "npm package ical.js not installed")
    out = subprocess.run(
        [str(node), str(HERE / "read_ics.mjs"), str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return {e["uid"]: e for e in json.loads(out)["events"]}


def read_icalendar_texts(path: Path) -> dict[str, dict[str, object]]:
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    return {
        str(e["UID"]): {"summary": str(e["SUMMARY"]), "description": str(e["DESCRIPTION"])}
        for e in cal.walk("VEVENT")
    }


DESCRIPTIONS_SCRIPT = """
import json, sys, vobject
cal = vobject.readOne(open(sys.argv[1], encoding="utf-8").read())
cal.validate(raiseException=True)
print(json.dumps({e.uid.value: [e.summary.value, e.description.value] for e in cal.vevent_list}))
"""


def vobject_texts(path: Path) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", DESCRIPTIONS_SCRIPT, str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    found: dict[str, list[str]] = json.loads(out.stdout)
    return found


def ical_descriptions(path: Path) -> dict[str, str]:
    from ical.calendar_stream import IcsCalendarStream

    cal = IcsCalendarStream.calendar_from_ics(path.read_text(encoding="utf-8"))
    return {e.uid: e.description or "" for e in cal.events}


def test_the_french_calendar_speaks_french(files):
    text = files["fr"].read_bytes().decode("utf-8")
    unfolded = text.replace("\r\n ", "")
    assert "SUMMARY:1001 EOT Fin de traitement\r\n" in unfolded
    assert "SUMMARY:1001 EOS Fin d'étude (provisoire)" in unfolded
    assert "SUMMARY:1001 W4 2e administration (réalisée)" in unfolded
    assert "Biopsie des glandes salivaires accessoires" in unfolded
    assert "Cible lun. 26 avr. 2027" in unfolded  # a human date, the locale's form
    assert "Fin de la contraception hautement efficace" in unfolded
    assert "Jour d'étude" in unfolded and "Procédures :" in unfolded


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_folds_never_split_a_character(files, lang):
    data = files[lang].read_bytes()
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 75
    for line in lines:
        line.decode("utf-8")  # each physical line on its own: no character cut in two
    if lang == "fr":
        # The French file does fold right next to accented letters (what the check is about).
        pairs = itertools.pairwise(lines)
        assert any(b.startswith(b" ") and not (a[-2:] + b[1:3]).isascii() for a, b in pairs)


def test_both_languages_hold_the_same_events(files):
    fr, en = (icalendar.Calendar.from_ical(files[lang].read_bytes()) for lang in ("fr", "en"))
    assert len(fr.walk("VEVENT")) == len(en.walk("VEVENT")) > 15

    def facts(cal: icalendar.Calendar) -> list[tuple[str, ...]]:
        return [
            tuple(
                e[k].to_ical().decode() if k in e else ""
                for k in ("UID", "DTSTART", "DTEND", "STATUS", "SEQUENCE", "CATEGORIES", "DTSTAMP")
            )
            for e in cal.walk("VEVENT")
        ]

    assert facts(fr) == facts(en)
    assert [str(e["SUMMARY"]) for e in fr.walk("VEVENT")] != [
        str(e["SUMMARY"]) for e in en.walk("VEVENT")
    ]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_four_parsers_read_the_texts_back_intact(files, lang):
    path = files[lang]
    written = read_icalendar_texts(path)  # icalendar: the library that wrote the file
    assert written
    for uid, event in read_icaljs_texts(path).items():
        assert event["summary"] == written[uid]["summary"]
        assert event["description"] == written[uid]["description"]
    for uid, event in read_ical(path).items():
        assert event["summary"] == written[uid]["summary"]
    for uid, description in ical_descriptions(path).items():
        assert description == written[uid]["description"]
    for uid, (summary, description) in vobject_texts(path).items():
        assert summary == written[uid]["summary"]
        assert description == written[uid]["description"]
    if lang == "fr":
        texts = " ".join(e["summary"] + e["description"] for e in written.values())
        for word in ("Sélection", "Fin d'étude", "Échographie", "préremplie", "entécavir"):
            assert word in texts
