"""visitplan in French: the site's language, --lang, French texts where people read them, the
same machine outputs in every language, French holidays, a French spreadsheet's CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pendulum
import pytest
from click.testing import CliRunner

import visitplan
from visitplan import csvfile, i18n
from visitplan.cli import cli
from visitplan.protocol_file import ProtocolErrors, dumps, loads, to_dict
from visitplan.protocol_file.checks import translation_gaps
from visitplan.roster_csv import KNOWN
from visitplan.site import builtin_site

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str, **kwargs: dict[str, str]) -> str:
    code, out, err = run(*args, **kwargs)  # type: ignore[arg-type]
    assert code == 0, err
    return out


@pytest.fixture
def roster(tmp_path: Path) -> Path:
    """Two participants at Brest, one with a dose recorded outside its window."""
    db = tmp_path / "brest.db"
    ok("enroll", "1001", "--screening", "2026-10-01", "--db", str(db), "--today", "2026-10-01")
    ok("enroll", "1002", "--screening", "2026-10-05", "--flag", "wocbp", "--db", str(db),
       "--today", "2026-10-05")  # fmt: skip
    ok("record", "1001", "D1", "--date", "2026-11-03", "--db", str(db), "--today", "2026-11-03")
    ok("record", "1001", "W4", "--date", "2026-12-10", "--db", str(db), "--today", "2026-12-10")
    return db


TODAY = "2026-12-15"


# -- the language of a run ------------------------------------------------------------------


def test_the_brest_site_speaks_french_unless_told_otherwise(roster, monkeypatch):
    monkeypatch.delenv("VISITPLAN_LANG")
    # 1002's Day 1 must fall in the 35-day run-in (a strict window): 20 December is refused.
    args = ["record", "1002", "D1", "--date", "2026-12-12", "--db", str(roster), "--today", TODAY]
    code, _out, err = run(*args)  # the site file's language
    assert (code, err) == (
        2,
        "erreur : D1.date '2026-12-12' : doit être entre le 2026-10-06 et le 2026-11-09 "
        "(fenêtre stricte de la visite Inclusion et 1re administration)\n",
    )
    english = (
        "error: D1.date '2026-12-12': must be between 2026-10-06 and 2026-11-09 "
        "(the strict window of Baseline and dose 1)\n"
    )
    assert run(*args, "--lang", "en")[2] == english  # after the command
    assert run("--lang", "en", *args)[2] == english  # before it
    env = {"VISITPLAN_LANG": "en"}
    assert run(*args, env=env)[2] == english
    # A typed --lang beats the environment; the command's own beats the group's.
    assert run("--lang", "fr", *args, env=env)[2].startswith("erreur : ")
    assert run("--lang", "en", *args, "--lang", "fr")[2].startswith("erreur : ")


def test_a_run_leaves_the_callers_language_alone(roster):
    ok("--lang", "fr", "due", "--db", str(roster), "--today", TODAY)
    assert i18n.language() == "en"
    code, _out, err = run("--lang", "de", "due")
    assert code == 2 and "'de' is not one of 'en', 'fr'" in err


def test_messages_read_in_french(roster):
    out = ok("--lang", "fr", "record", "1002", "D1", "--date", "2026-11-06", "--db", str(roster),
             "--today", "2026-11-06")  # fmt: skip
    assert out == "enregistré 1002 D1 : réalisée 2026-11-06\n"
    out = ok("--lang", "fr", "enroll", "1003", "--screening", "2026-11-02", "--db", str(roster),
             "--today", "2026-11-02")  # fmt: skip
    assert out == "inclus 1003 : sélection 2026-11-02, jour 1 prévu 2026-12-07\n"
    code, _out, err = run("--lang", "fr", "enroll", "1003", "--screening", "2026-11-02",
                          "--db", str(roster), "--today", "2026-11-02")  # fmt: skip
    assert (code, err) == (2, "erreur : participant '1003' : est déjà inclus\n")


# -- machine outputs never change with the language ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--participant", "1001", "--screening", "2026-10-01", "--day1", "2026-11-03",
         "--actual", "W4=2026-12-10", "--format", "json", "--today", "2027-03-01"],
        ["plan", "--participant", "1001", "--screening", "2026-10-01", "--format", "csv"],
        ["deviations", "--format", "json", "--today", "2027-03-01"],
        ["due", "--format", "json", "--today", TODAY, "--days", "60"],
        ["show", "1001", "--format", "json", "--today", "2027-03-01"],
        ["cdisc", "sv", "--db"],
    ],
    ids=["plan-json", "plan-csv", "deviations-json", "due-json", "show-json", "cdisc-sv"],
)  # fmt: skip
def test_json_and_csv_are_the_same_bytes_in_every_language(roster, args):
    if args[-1] == "--db":
        args = [*args, str(roster), "--today", "2027-03-01"]
    elif args[0] != "plan":
        args = [*args, "--db", str(roster)]
    fr, en = (ok("--lang", lang, *args) for lang in ("fr", "en"))
    assert fr == en
    assert "out-of-window" in fr or args[0] != "deviations"  # findings' kinds and messages too


def test_calendars_keep_their_uids_in_every_language(roster):
    args = ["ics", "--db", str(roster), "--today", TODAY, "--dtstamp",
            "2026-01-01T00:00:00Z"]  # fmt: skip
    fr, en = (ok("--lang", lang, *args) for lang in ("fr", "en"))
    assert fr != en
    uids = [[line for line in text.splitlines() if line.startswith("UID:")] for text in (fr, en)]
    assert uids[0] == uids[1] and len(uids[0]) > 20
    assert "SUMMARY:1001 W4 2e administration (réalisée)" in fr


# -- French holidays and the agenda ----------------------------------------------------------


def test_holidays_are_named_in_the_sites_language():
    site = builtin_site("BREST")
    easter_monday, whit_monday = pendulum.date(2027, 3, 29), pendulum.date(2027, 5, 17)
    with i18n.use("fr"):
        assert site.holiday(easter_monday) == "Lundi de Pâques"
        assert site.closed_reason(whit_monday) == "jour férié : Lundi de Pentecôte"
        assert site.closed_reason(pendulum.date(2027, 3, 28)) == "centre fermé le dimanche"
    with i18n.use("en"):
        assert site.holiday(easter_monday) == "Easter Monday"
        assert site.closed_reason(whit_monday) == "public holiday: Pentecost Monday"
    assert site.language == "fr"


def test_a_french_agenda_over_easter_and_whit_monday(tmp_path):
    db = tmp_path / "easter.db"
    # Day 1 is planned 35 days after screening and Week 4 28 days later: screened on 25 January
    # 2027, W4 falls on Easter Monday (29 March); screened on 15 March, on Whit Monday (17 May).
    for code, screening in (("2001", "2027-01-25"), ("2002", "2027-03-15")):
        ok("enroll", code, "--screening", screening, "--db", str(db), "--today", screening)
    out = ok("--lang", "fr", "agenda", "--db", str(db), "--from", "2027-03-26", "--to",
             "2027-05-20", "--propose", "--today", "2027-03-01")  # fmt: skip
    lines = out.splitlines()
    assert "lun. 29 mars 2027  charge 1  FERMÉ (jour férié : Lundi de Pâques)" in lines
    assert "lun. 17 mai 2027  charge 1  FERMÉ (jour férié : Lundi de Pentecôte)" in lines
    # The proposals move both doses to the next open day, and say why in French.
    assert [line.split(maxsplit=4) for line in lines[-2:]] == [
        ["2001", "W4", "2027-03-29", "2027-03-30", "jour férié : Lundi de Pâques"],
        ["2002", "W4", "2027-05-17", "2027-05-18", "jour férié : Lundi de Pentecôte"],
    ]
    assert "Easter" not in out and "Whit" not in out and "Pentecost" not in out


# -- protocol texts in several languages -----------------------------------------------------


def test_the_built_in_protocol_speaks_french_everywhere(study):
    assert translation_gaps(study) == {}
    names = {v.code: v.name_in("fr") for v in study.visits}
    assert names["EOT"] == "Fin de traitement" and names["EOS"] == "Fin d'étude"
    biopsy = study.visit("EOT").procedures[0]
    assert biopsy.describe("fr").startswith("Biopsie des glandes salivaires accessoires")
    assert biopsy.describe() == biopsy.name  # machine outputs: the protocol's own text
    dose = study.visit("D1").procedures[1]
    assert dose.describe("fr") == (
        "ianalumab 300 mg s.c. en 2 injections de 150 mg/1 mL (seringue préremplie)"
    )
    assert {e.name_in("fr") for e in study.epochs} == {
        "Pré-inclusion (sélection et inclusion)",
        "Traitement",
        "Suivi",
    }
    assert {m.name_in("fr") for m in study.milestones} == {
        "Fin de la prophylaxie antivirale (ténofovir ou entécavir)",
        "Fin de la contraception hautement efficace",
    }


def test_translations_round_trip_and_are_checked(study):
    for fmt in ("toml", "json"):
        assert loads(dumps(study, fmt=fmt), fmt=fmt) == study
    doc = to_dict(study)
    doc["visits"][0]["translations"] = {"fr": "Sélection", "DE": "Screening", "de": "\n"}
    with pytest.raises(ProtocolErrors) as info:
        visitplan.protocol_file.from_dict(doc)
    messages = [str(e) for e in info.value.errors]
    assert messages == [
        "<protocol>: visits.SCR.translations 'DE': a language code is 2 or 3 lower-case "
        "letters (fr, de)",
        "<protocol>: visits.SCR.translations.de '\\n': must be non-empty text",
    ]


def test_protocol_check_warns_when_a_language_is_incomplete(study, tmp_path):
    doc = to_dict(study)
    del doc["visits"][-1]["translations"]
    doc["procedures"]["BCELL"]["translations"] = {"fr": "Numération", "de": "B-Zellen"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, err = run("protocol", "check", str(path))
    assert code == 0 and out.startswith("ok: ")
    lines = err.splitlines()
    assert lines[0].startswith(f"warning: {path}: the de translations are incomplete: ")
    assert lines[1] == (
        f"warning: {path}: the fr translations are incomplete: 1 name has none: visits.HBV.name"
    )


# -- a French spreadsheet's CSV ----------------------------------------------------------------


def test_excel_csv_has_semicolons_and_a_bom_and_the_same_cells():
    args = ["plan", "--participant", "1001", "--screening", "2026-10-01", "--format", "csv"]
    plain, excel = ok(*args), ok(*args, "--excel")
    assert excel.startswith(csvfile.BOM) and not plain.startswith(csvfile.BOM)
    assert excel.splitlines()[0] == plain.splitlines()[0].replace(",", ";").replace(
        "participant", csvfile.BOM + "participant", 1
    )
    assert list(csvfile.read_rows(excel)) == list(csvfile.read_rows(plain))


def test_a_semicolon_roster_with_a_bom_round_trips_through_import(tmp_path):
    rows = [
        ["4001", "BREST", "2026-09-01", "", "hbcab_positive;wocbp"],
        ["4002", "BREST", "2026-09-07", "2026-10-05", ""],
    ]
    path = tmp_path / "liste.csv"
    path.write_bytes(csvfile.to_csv(KNOWN, rows, excel=True).encode("utf-8"))
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfparticipant;site;screening;day1;flags\n")
    assert b'"hbcab_positive;wocbp"' in data  # a cell holding ';' is quoted
    db = tmp_path / "r.db"
    out = ok("import", str(path), "--db", str(db), "--today", "2026-11-01")
    assert out == f"created the roster {db}\nimported 2 participants from {path}\n"
    shown = [
        json.loads(ok("show", code, "--format", "json", "--db", str(db), "--today", "2026-11-01"))
        for code in ("4001", "4002")
    ]
    assert shown[0]["participant"]["flags"] == ["hbcab_positive", "wocbp"]
    assert shown[1]["participant"]["day1"] == "2026-10-05"


def test_day_first_dates_only_with_dayfirst(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text(
        "\ufeffparticipant;site;screening;day1;flags\n5001;BREST;01/09/2026;06/10/2026;\n",
        encoding="utf-8",
    )
    db = tmp_path / "d.db"
    code, _out, err = run("import", str(path), "--db", str(db), "--today", "2026-11-01")
    assert code == 2
    assert err == (
        f"error: {path}:2: screening '01/09/2026': is not written YYYY-MM-DD; a day-first date "
        "(31/01/2023) is read only with --dayfirst\n"
    )
    assert not db.exists()
    ok("import", str(path), "--dayfirst", "--db", str(db), "--today", "2026-11-01")
    doc = json.loads(ok("show", "5001", "--format", "json", "--db", str(db), "--today",
                        "2026-11-01"))  # fmt: skip
    assert (doc["participant"]["screening"], doc["participant"]["day1"]) == (
        "2026-09-01",
        "2026-10-06",
    )


def test_a_site_file_names_a_language_visitplan_speaks(tmp_path):
    from visitplan.site import loads_site

    text = (ROOT / "src/visitplan/sites/BREST.toml").read_text(encoding="utf-8")
    with pytest.raises(visitplan.VisitplanError) as info:
        loads_site(text.replace('language = "fr"', 'language = "br"'))
    assert "site.language 'br': must be one of: en, fr" in str(info.value)
    assert loads_site(text.replace('language = "fr"\n', "")).language == "en"


# -- tables, charts and the schedule of activities in French ---------------------------------


def wide(*args: str) -> str:
    return ok(*args, env={"COLUMNS": "200"})


def test_a_participants_table_reads_in_french(roster):
    out = wide("--lang", "fr", "show", "1002", "--db", str(roster), "--today", TODAY)
    lines = out.splitlines()
    assert lines[0] == "NCT05124925 participant 1002 : jour 1 2026-11-09"
    header = lines[2].split("┃")
    assert [h.strip() for h in header[1:-1]] == [
        "Code", "Visite", "Cible", "Fenêtre", "Jour", "Statut", "Type",
    ]  # fmt: skip
    d1 = next(line for line in lines if "│ D1 " in line)
    # The visit's name, status and the target's weekday in French, the dates ISO (as typed).
    assert "Inclusion et 1re administration" in d1 and "2026-11-09 lun." in d1
    assert "2026-10-06..2026-11-09" in d1 and "en retard" not in d1 and "prévue" in d1
    assert "sélection" in next(line for line in lines if "│ SCR " in line)  # its kind
    assert "Jalons (dates qui ne sont pas des visites)" in out
    assert "Fin de la contraception hautement efficace" in out
    assert "? provisoire : la date attend un événement" in out
    assert "D1 : en retard : la date limite 2026-11-09 est passée" in out  # a finding's line
    english = wide("--lang", "en", "show", "1002", "--db", str(roster), "--today", TODAY)
    assert "Baseline and dose 1" in english and "2026-11-09 Mon" in english
    for word in ("Cible", "prévue", "lun.", "Jalons"):
        assert word not in english


def test_the_daily_lists_read_in_french(roster):
    db = ["--db", str(roster)]
    due = wide("--lang", "fr", "due", "--days", "30", *db, "--today", TODAY)
    assert due.splitlines()[0] == "À venir à partir du 2026-12-15 sur 30 jours (2 visites)"
    assert "Participant ┃ Visite ┃ Nom" in due and "Rendez-vous" in due
    assert "3e administration" in due and "│ 2026-12-29 │" in due
    late = wide("--lang", "fr", "deviations", *db, "--today", TODAY)
    assert late.splitlines()[0].startswith("Déviations au 2026-12-15 (")
    assert "hors fenêtre" in late and "en retard" in late and "Quoi" in late
    assert "out-of-window" not in late and "overdue" not in late
    assert wide("--lang", "fr", "overdue", *db, "--today", TODAY).startswith("En retard au ")
    history = wide("--lang", "fr", "history", "1001", *db, "--today", TODAY)
    assert history.splitlines()[0] == "Historique de 1001 (heures : Europe/Paris)"
    assert "Utilisateur" in history and "Motif" in history


def test_the_agenda_reads_in_french(roster):
    out = wide("--lang", "fr", "agenda", "--db", str(roster), "--from", "2026-12-24", "--to",
               "2026-12-31", "--propose", "--today", TODAY)  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == (
        "BREST (Europe/Paris, consultations 08:30-17:00, capacité biopsie 2/jour) : "
        "du 2026-12-24 au 2026-12-31"
    )
    assert lines[1].split() == [
        "Participant",
        "Visite",
        "Nom",
        "État",
        "Fenêtre",
        "Jours",
        "ouverts",
    ]
    assert "mar. 29 déc. 2026  charge 1" in lines
    assert any(
        line.split()[:5] == ["1001", "W8", "3e", "administration", "prévue"] for line in lines
    )
    assert "1 jour avec visites ; fermés : 0, en surcapacité : 0" in lines
    assert "propositions (au plus proche ; rien n'est réservé)" in out


def test_the_schedule_of_activities_reads_in_french():
    fr, en = (wide("--lang", lang, "protocol", "show") for lang in ("fr", "en"))
    assert fr.splitlines()[0] == "NCT05124925 : calendrier des visites et examens"
    for text in (
        "Fin de traitement", "Visite", "Période", "Délai", "sél +35j", "D1 +4sem", "DA +5mois",
        "q12sem",
        "sél = date de sélection, DA = dernière administration, q = toutes les ; Jour = jour "
        "d'étude prévu",
        "BIOPSY : Biopsie des glandes salivaires accessoires",
        "EOT : jamais avant la dernière administration + 21 jours",
        "FU : se répète toutes les 12 semaines à partir de la première, jusqu'à +24 mois",
        "DOSE : ianalumab 300 mg s.c. en 2 injections de 150 mg/1 mL (seringue préremplie)",
        "(X) HBV : seulement pour les participants avec l'indicateur hbcab_positive",
    ):  # fmt: skip
        assert text in fr, text
    for text in ("scr +35d", "D1 +4w", "LD +5mo", "q12w", "repeats every 12 weeks",
                 "never before last dose + 21 days", "End of treatment"):  # fmt: skip
        assert text in en and text not in fr, text


def test_charts_are_labelled_in_french(roster, tmp_path):
    # SVG keeps its texts as text (svg.fonttype none): the labels can be read back.
    for lang in ("fr", "en"):
        ok("--lang", lang, "chart", "timeline", "--db", str(roster), "--today", TODAY,
           "-o", str(tmp_path / f"t-{lang}.svg"))  # fmt: skip
        load = str(tmp_path / f"l-{lang}.svg")
        ok("--lang", lang, "chart", "load", "--db", str(roster), "--from", "2026-11-01",
           "--to", "2027-01-31", "--today", TODAY, "-o", load)  # fmt: skip
    timeline = (tmp_path / "t-fr.svg").read_text(encoding="utf-8")
    assert "Visites par participant : fenêtre (barre), cible (|), réalisée (o)" in timeline
    assert "Visits per participant" not in timeline
    load = (tmp_path / "l-fr.svg").read_text(encoding="utf-8")
    assert "Charge de BREST par jour, du 2026-11-01 au 2027-01-31" in load
    assert "biopsie" in load and "biopsy" not in load
    assert "Visits per participant" in (tmp_path / "t-en.svg").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["due", "overdue", "deviations", "agenda"])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_daily_lists_machine_formats_never_change(roster, command, fmt):
    args = [command, "--format", fmt, "--db", str(roster), "--today", TODAY]
    if command == "agenda":
        args += ["--from", "2026-12-01", "--to", "2027-01-31", "--propose"]
    fr, en = (ok("--lang", lang, *args) for lang in ("fr", "en"))
    assert fr == en
    # English words, French nowhere: visit names, states, kinds of finding and their messages.
    assert "administration" not in fr and "prévue" not in fr and "en retard" not in fr
    assert ("Dose 3" in fr) if command in ("due", "agenda") else ("overdue" in fr)


# -- a third language is a catalog, not code ------------------------------------------------

GERMAN = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Language: de\\n"

msgid "Window"
msgstr "Zeitfenster"

msgid "{study}: schedule of activities"
msgstr "{study}: Visitenplan"
"""


def test_a_third_language_is_only_a_catalog(tmp_path):
    """A copy of the package with one more folder, locale/de/LC_MESSAGES with a .po compiled
    by Babel, speaks German: --lang accepts it and the texts it has read in German (the rest
    in English)."""
    import os
    import shutil
    import subprocess
    import sys

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    package = tmp_path / "visitplan"
    shutil.copytree(Path(visitplan.__file__).parent, package)
    folder = package / "locale" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "visitplan.po").write_text(GERMAN, encoding="utf-8")
    with (folder / "visitplan.po").open("rb") as po, (folder / "visitplan.mo").open("wb") as mo:
        write_mo(mo, read_po(po, locale="de"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200"}
    env.pop("VISITPLAN_LANG", None)
    shown = subprocess.run(
        [sys.executable, "-m", "visitplan", "--lang", "de", "protocol", "show"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert shown.splitlines()[0] == "NCT05124925: Visitenplan"
    assert "│ Zeitfenster " in shown and "│ Epoch " in shown  # untranslated: English
    # No catalog, no language: the installed package refuses de.
    code, _out, err = run("--lang", "de", "protocol", "show")
    assert code == 2 and "'de' is not one of 'en', 'fr'" in err


# -- docs/fr/tutorial.md ----------------------------------------------------------------------
# Its commands run, and print what it shows, in tests/test_docs_commands.py (every page).


def test_the_french_tutorial_is_in_the_docs_nav_and_speaks_french():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "fr/tutorial.md" in nav
    page = (ROOT / "docs" / "fr" / "tutorial.md").read_text(encoding="utf-8")
    assert "$ export VISITPLAN_LANG=fr" in page  # the tests' VISITPLAN_LANG=en does not apply
    for shown in ("FERMÉ (jour férié : Lundi de Pâques)", "Inclusion et 1re administration",
                  "erreur : D1.date", "Historique de 1001"):  # fmt: skip
        assert shown in page


@pytest.mark.parametrize("command", ["due", "overdue", "deviations", "history", "show", "agenda"])
def test_every_daily_list_writes_csv_for_a_french_spreadsheet(roster, command):
    args = [command, "--format", "csv", "--db", str(roster), "--today", TODAY]
    if command in ("history", "show"):
        args.insert(1, "1001")
    if command == "agenda":
        args += ["--from", "2026-12-01", "--to", "2027-01-31"]
    plain, excel = ok(*args), ok(*args, "--excel")
    assert excel.startswith(csvfile.BOM) and ";" in excel.splitlines()[0]
    assert not plain.startswith(csvfile.BOM)
    assert list(csvfile.read_rows(excel)) == list(csvfile.read_rows(plain))
    assert len(plain.splitlines()) > 1
