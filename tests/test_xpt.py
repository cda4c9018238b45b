"""SDTM as SAS transport v5 files (``--format xpt``), read back by an independent reader.

visitplan writes the files with ReadStat (pyreadstat); these tests read them with pandas' own
XPORT reader (pure Python, not ReadStat) and compare every row, name, label, type and length
with the CSV export of the same data and with SDTMIG v3.4, restated here.
"""

from __future__ import annotations

import csv
import io
import math
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from visitplan.cli import cli
from visitplan.errors import VisitplanError

pd = pytest.importorskip("pandas")
pytest.importorskip("pyreadstat")
from pandas.io.sas.sas_xport import XportReader  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "weekly-oncology.toml"

#: SDTMIG v3.4 (restated, not imported): dataset labels, and per variable its label and type.
DATASET_LABELS = {
    "TV": "Trial Visits",
    "TE": "Trial Elements",
    "TA": "Trial Arms",
    "SV": "Subject Visits",
}
_SDTMIG_TABLE = """
STUDYID   Char  Study Identifier
DOMAIN    Char  Domain Abbreviation
USUBJID   Char  Unique Subject Identifier
VISITNUM  Num   Visit Number
VISIT     Char  Visit Name
VISITDY   Num   Planned Study Day of Visit
ARMCD     Char  Planned Arm Code
ARM       Char  Description of Planned Arm
TVSTRL    Char  Visit Start Rule
TVENRL    Char  Visit End Rule
ETCD      Char  Element Code
ELEMENT   Char  Description of Element
TESTRL    Char  Rule for Start of Element
TEENRL    Char  Rule for End of Element
TEDUR     Char  Planned Duration of Element
TAETORD   Num   Planned Order of Element within Arm
TABRANCH  Char  Branch
TATRANS   Char  Transition Rule
EPOCH     Char  Epoch
SVPRESP   Char  Pre-specified
SVOCCUR   Char  Occurrence
SVREASOC  Char  Reason for Occur Value
SVSTDTC   Char  Start Date/Time of Observation
SVENDTC   Char  End Date/Time of Observation
SVSTDY    Num   Study Day of Start of Observation
SVENDY    Num   Study Day of End of Observation
SVUPDES   Char  Description of Unplanned Visit
"""
#: name -> (label, type as pandas' reader names it), from the table above.
SDTMIG = {
    name: (label, {"Char": "char", "Num": "numeric"}[kind])
    for name, kind, label in (line.split(maxsplit=2) for line in _SDTMIG_TABLE.strip().splitlines())
}
#: The first record of a version 5 transport file (version 8 files say LIBV8).
V5_LIBRARY_HEADER = b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!" + b"0" * 30


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def read_xpt(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(member header, variables, rows) as pandas' XPORT reader sees the file."""
    with XportReader(str(path), encoding="utf-8") as reader:
        member, fields, nobs = dict(reader.member_info), list(reader.fields), reader.nobs
    rows: list[dict[str, Any]] = []
    if nobs:  # pandas' read_sas stops on a file with no observation
        frame = pd.read_sas(str(path), format="xport", encoding="utf-8")
        rows = frame.to_dict("records")
    variables = [
        {
            "name": f["name"].decode("ascii"),
            "label": f["label"].decode("ascii"),
            "type": f["ntype"],
            "length": f["field_length"],
        }
        for f in fields
    ]
    return member, variables, rows


def assert_same_as_csv(xpt: Path, csv_text: str, dataset: str) -> list[dict[str, Any]]:
    member, variables, rows = read_xpt(xpt)
    assert xpt.read_bytes()[:78] == V5_LIBRARY_HEADER
    assert (member["set_name"], member["label"]) == (dataset, DATASET_LABELS[dataset])
    reader = csv.DictReader(io.StringIO(csv_text))
    expected = list(reader)
    header = list(reader.fieldnames or [])
    assert [v["name"] for v in variables] == header
    for v in variables:
        label, kind = SDTMIG[v["name"]]
        assert (v["label"], v["type"]) == (label, kind), v["name"]
        assert len(v["name"]) <= 8 and len(v["label"]) <= 40
        if kind == "numeric":
            assert v["length"] == 8
        else:  # the longest value (FDA: no padding), at least 1 byte
            longest = max((len(r[v["name"]].encode()) for r in expected), default=0)
            assert v["length"] == max(longest, 1), v["name"]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert list(got) == header
        for name in header:
            if SDTMIG[name][1] == "numeric":
                if want[name] == "":
                    assert math.isnan(got[name]), name
                else:
                    assert got[name] == float(want[name]), name
            else:
                assert got[name] == want[name], name
    return rows


@pytest.mark.parametrize("protocol", ["NCT05124925", str(EXAMPLE)], ids=["nct", "example"])
@pytest.mark.parametrize("domain", ["tv", "te", "ta"])
def test_trial_design_xpt_reads_back_as_the_csv(tmp_path, protocol, domain):
    text = invoke("cdisc", domain, "-p", protocol).stdout
    out = tmp_path / f"{domain}.xpt"
    result = invoke("cdisc", domain, "-p", protocol, "--format", "xpt", "-o", str(out))
    assert result.stderr == f"wrote {out}\n"
    rows = assert_same_as_csv(out, text, domain.upper())
    assert rows  # every protocol has visits and epochs
    if domain == "tv" and protocol == "NCT05124925":
        by_name = {r["VISIT"]: r for r in rows}
        assert by_name["Screening"]["VISITDY"] == -35.0  # a negative number, not text
        assert math.isnan(by_name["End of study"]["VISITDY"])  # no fixed day: missing


def test_sv_xpt_from_a_roster_database_reads_back_as_the_csv(tmp_path):
    db, today = str(tmp_path / "r.db"), "2022-11-10"

    def at(*args: str) -> Any:
        return invoke(*args, "--db", db, "--today", today)

    at("enroll", "1501", "--screening", "2022-07-27")
    at("enroll", "1502", "--screening", "2022-10-20")
    at("record", "1501", "D1", "--date", "2022-08-31")
    at("record", "1501", "W4", "--date", "2022-09-29")
    at("record", "1501", "W8", "--status", "missed", "--date", "2022-10-26", "--reason", "ill")
    at("record", "1501", "--unscheduled", "--date", "2022-08-20", "--reason", "rash, Brest")
    at("record", "1502", "--unscheduled", "--date", "2022-10-25", "--reason", "fièvre")
    text = at("cdisc", "sv").stdout
    out = tmp_path / "sv.xpt"
    at("cdisc", "sv", "--format", "xpt", "-o", str(out))
    rows = assert_same_as_csv(out, text, "SV")
    got = [(r["USUBJID"][-4:], r["VISITNUM"], r["SVSTDY"], r["SVUPDES"]) for r in rows]
    nan = [math.isnan(r["SVSTDY"]) for r in rows]
    assert [g[:2] for g in got] == [
        ("1501", 100.0),
        ("1501", 100.01),  # a decimal VISITNUM survives the IBM float
        ("1501", 200.0),
        ("1501", 300.0),
        ("1501", 400.0),
        ("1502", 100.0),
        ("1502", 100.01),
    ]
    assert [g[2] for g, n in zip(got, nan, strict=True) if not n] == [-35.0, -11.0, 1.0, 30.0]
    assert nan == [False, False, False, False, True, True, True]  # missed; no Day 1 yet
    assert got[-1][3] == "fièvre"  # UTF-8 text comes back as written


def test_xpt_keeps_text_as_it_is(tmp_path):
    # The CSV guards spreadsheet formulas with a quote; a transport file is data for SAS
    # and keeps the value as recorded.
    from visitplan.export import cdisc, xpt

    row = {c: "" for c in cdisc.SV_COLUMNS} | {"VISITNUM": "100.01", "SVUPDES": "=rash check"}
    out = tmp_path / "sv.xpt"
    out.write_bytes(xpt.to_xpt([row], cdisc.SV_COLUMNS, "SV"))
    (back,) = read_xpt(out)[2]
    assert back["SVUPDES"] == "=rash check"


def test_a_value_over_200_bytes_is_refused_naming_dataset_variable_and_value(tmp_path):
    from visitplan.export import cdisc, xpt

    out = tmp_path / "ta.xpt"
    r = CliRunner().invoke(
        cli, ["cdisc", "ta", "--arm", "A" * 201, "--format", "xpt", "-o", str(out)]
    )
    assert r.exit_code == 2
    assert r.stderr.startswith("error: TA.ARM 'AAAA") and len(r.stderr.splitlines()) == 1
    assert "is 201 bytes; a SAS transport v5 file holds at most 200 bytes" in r.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # Bytes, not characters: 101 accented letters are 202 bytes of UTF-8.
    row = {c: "" for c in cdisc.SV_COLUMNS} | {"VISITNUM": "100"}
    with pytest.raises(VisitplanError, match=r"^SV\.SVUPDES 'ééé.*: is 202 bytes"):
        xpt.to_xpt([row | {"SVUPDES": "é" * 101}], cdisc.SV_COLUMNS, "SV")
    # Exactly 200 bytes fit.
    out.write_bytes(xpt.to_xpt([row | {"SVUPDES": "é" * 100}], cdisc.SV_COLUMNS, "SV"))
    assert read_xpt(out)[2][0]["SVUPDES"] == "é" * 100
    # The CSV has no such limit.
    assert CliRunner().invoke(cli, ["cdisc", "ta", "--arm", "A" * 201]).exit_code == 0


def test_an_empty_dataset_is_still_a_dataset(tmp_path):
    from visitplan.export import cdisc, xpt

    out = tmp_path / "sv.xpt"
    out.write_bytes(xpt.to_xpt([], cdisc.SV_COLUMNS, "SV"))
    member, variables, rows = read_xpt(out)
    assert member["set_name"] == "SV" and rows == []
    assert [v["name"] for v in variables] == list(cdisc.SV_COLUMNS)


def test_xpt_goes_to_a_pipe_but_never_to_a_terminal(tmp_path):
    piped = CliRunner().invoke(cli, ["cdisc", "te", "--format", "xpt"])
    assert piped.exit_code == 0
    out = tmp_path / "te.xpt"
    out.write_bytes(piped.stdout_bytes)
    assert_same_as_csv(out, invoke("cdisc", "te").stdout, "TE")
    # A real terminal: the binary file is refused before anything is written to it.
    main, tty = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "visitplan", "cdisc", "te", "--format", "xpt"],
            stdout=tty,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
        os.set_blocking(main, False)
        try:
            shown = os.read(main, 1 << 16)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(main)
        os.close(tty)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --format 'xpt': writes a binary file: give -o FILE or redirect the output\n"
    )
    assert shown == b""


def test_unknown_dataset_is_refused():
    from visitplan.export import xpt

    with pytest.raises(VisitplanError, match="dataset 'DM': must be one of: TV, TE, TA, SV"):
        xpt.to_xpt([], ("STUDYID",), "DM")
