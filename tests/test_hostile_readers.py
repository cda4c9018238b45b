"""Hostile input, round two (issue 18): every reader is bounded and answers in one line.

Files are read only when they are regular files and only up to a limit (item 4); NaN and
infinities are refused in protocol and site files (item 6); the inputs that used to end in a
traceback (item 7), misleading YAML messages (item 10) and a history's duplicate keys and
unclosed quotes (item 11) each give exit 2 and one line naming the bad value.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests import cli as harness

import visitplan
from visitplan import VisitplanError, fileio
from visitplan.protocol_file import dumps, loads

BIN = Path(sys.executable).with_name("visitplan")
STUDY_TOML = dumps(visitplan.builtin("NCT05124925"))
SCREENING = "2022-07-27"


def run(*args: str) -> Any:
    return harness.run(*args)


def one_line(r: Any, expected: str) -> None:
    """Exit 2 and exactly the one line ``error: expected`` (a prefix of it where it ends in
    '...')."""
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.stderr.count("\n") == 1, r.stderr
    line = r.stderr.rstrip("\n")
    if expected.endswith("..."):
        assert line.startswith("error: " + expected[:-3]), line
    else:
        assert line == "error: " + expected, line


def real_run(*args: str, cwd: Path, memory: int | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point in a process of its own (a FIFO blocks the whole process), with
    at most ``memory`` bytes of address space."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "visitplan"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=60, cwd=cwd, preexec_fn=limit
    )


# -- item 4: regular files only, up to a limit ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "name", "what"),
    [
        (["protocol", "check", "p.toml"], "p.toml", "protocol file"),
        (["plan", "--participant", "1001", "--screening", SCREENING, "-p", "p.toml"], "p.toml",
         "protocol file"),
        (["ics", "--roster", "r.csv", "-o", "-"], "r.csv", "roster file"),
        (["import", "r.csv", "--db", "new.db"], "r.csv", "roster file"),
        (["eligibility", "--screening", SCREENING, "--history", "h.csv"], "h.csv",
         "history file"),
        (["agenda", "--site", "s.toml", "--from", "2023-01-02", "--to", "2023-01-03"], "s.toml",
         "site file"),
    ],
)  # fmt: skip
def test_a_fifo_is_refused_at_once(tmp_path, args, name, what):
    os.mkfifo(tmp_path / name)
    r = real_run(*args, cwd=tmp_path)  # the old readers waited for a writer forever
    assert r.returncode == 2, r.stderr
    assert r.stderr == (
        f"error: {what} '{name}': is not a regular file (a FIFO, a device or a socket)\n"
    )
    assert not (tmp_path / "new.db").exists()


def test_a_protocol_that_links_to_dev_zero_is_refused_without_reading_it(tmp_path):
    (tmp_path / "zero.toml").symlink_to("/dev/zero")
    r = real_run("protocol", "check", "zero.toml", cwd=tmp_path, memory=1024**3)
    assert r.returncode == 2, r.stderr[-500:]  # it read until MemoryError
    assert r.stderr == (
        "error: protocol file 'zero.toml': is not a regular file (a FIFO, a device or a socket)\n"
    )


def test_read_bytes_stops_at_its_limit_even_when_the_size_lies(tmp_path, monkeypatch):
    path = tmp_path / "f.csv"
    path.write_bytes(b"x" * 2048)
    assert fileio.read_bytes(path, "roster file", limit=2048) == b"x" * 2048
    with pytest.raises(VisitplanError) as info:
        fileio.read_bytes(path, "roster file", limit=1024, usual="a roster is small")
    assert str(info.value) == f"roster file '{path}': is larger than 1 kB; a roster is small"
    # A file that grows after fstat (or a /proc file that reports 0 bytes) is still cut off.
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: _zero_size(real_fstat(fd)))
    with pytest.raises(VisitplanError, match="is larger than 1 kB"):
        fileio.read_bytes(path, "roster file", limit=1024)


def _zero_size(st: os.stat_result) -> os.stat_result:
    fields = list(st)
    fields[6] = 0  # st_size
    return os.stat_result(fields)


@pytest.mark.parametrize(
    ("name", "args", "size", "expected"),
    [
        ("h.csv", ["eligibility", "--screening", SCREENING, "--history"], 1024**2 + 1,
         "history file 'h.csv': is larger than 1 MB; a history is a few lines"),
        ("s.toml", ["agenda", "--from", "2023-01-02", "--to", "2023-01-03", "--site"],
         1024**2 + 1, "site file 's.toml': is larger than 1 MB; a site file is a few kB"),
    ],
)  # fmt: skip
def test_each_reader_has_its_size_limit(tmp_path, monkeypatch, name, args, size, expected):
    monkeypatch.chdir(tmp_path)
    Path(name).write_bytes(b"#" * size)
    one_line(run(*args, name), expected)


def test_read_text_refuses_a_folder_and_a_nul_in_the_path(tmp_path):
    with pytest.raises(VisitplanError, match="cannot be read: Is a directory"):
        fileio.read_text(tmp_path, "roster file")
    with pytest.raises(VisitplanError, match="cannot be read: not a valid path"):
        fileio.read_text(str(tmp_path / "a\x00b"), "roster file")


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_yaml_alias_bomb_is_refused_quickly():
    assert len(BOMB) < 500
    with pytest.raises(VisitplanError) as info:  # it ran for minutes
        loads(BOMB, source="bomb.yaml", fmt="yaml")
    assert str(info.value) == (
        "file 'bomb.yaml': is not a protocol: its YAML aliases stand for more than 100,000 values"
    )


def test_a_yaml_alias_that_refers_to_itself_is_refused():
    with pytest.raises(VisitplanError, match="an alias refers to itself"):
        loads("study: &a [*a]\n", source="r.yaml", fmt="yaml")


def test_a_few_yaml_aliases_are_still_read():
    text = STUDY_TOML  # the study as YAML, with one window shared through an alias
    import tomllib

    import yaml

    doc = tomllib.loads(text)
    yaml_text = yaml.safe_dump(doc, sort_keys=False)
    assert loads(yaml_text, fmt="yaml") == loads(text)


# -- item 6: NaN and infinities -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nan", "sites[0].bcell_lln nan: must be a finite number (not NaN or infinite)"),
        ("inf", "sites[0].bcell_lln inf: must be a finite number (not NaN or infinite)"),
        ("-inf", "sites[0].bcell_lln -inf: must be a finite number (not NaN or infinite)"),
        ("1" + "0" * 400, "sites.BREST.bcell_lln 1000000000000000000000000000000000000000000"
         "0000000000000000000000000000000000...: is too large to be a count"),
    ],
)  # fmt: skip
def test_a_protocol_bcell_lln_that_is_no_number_is_refused(tmp_path, value, expected):
    path = tmp_path / "p.toml"
    path.write_text(STUDY_TOML.replace("bcell_lln = 80", f"bcell_lln = {value}"))
    r = run("plan", "--participant", "1001", "--screening", SCREENING, "-p", str(path))
    one_line(r, f"{path}: {expected}")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_yaml_nan_and_infinity_are_refused_anywhere(value):
    with pytest.raises(VisitplanError, match=r"x\.y (nan|inf|-inf): must be a finite number"):
        visitplan.protocol_file.reading.parse(f"x:\n  y: {value}\n", source="p.yaml", fmt="yaml")


def test_a_site_file_with_nan_or_a_huge_number_is_one_line(tmp_path):
    site = (Path(visitplan.__file__).parent / "sites" / "BREST.toml").read_text()
    for extra, expected in (
        ("", "capacity.biopsy nan: must be a finite number"),
        ("x = " + "9" * 5000 + "\n", "s.toml': is not valid TOML: a number is too long"),
        ("[" + ".".join(["a"] * 1000) + "]\n", "s.toml: a {'a': {'a': {'a': {...}}}}: unknown"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "s.toml': is not valid TOML: nested too"),
    ):
        text = site.replace("biopsy = 2", "biopsy = nan") if not extra else site
        (tmp_path / "s.toml").write_text(text + "\n" + extra)
        r = run("agenda", "--site", str(tmp_path / "s.toml"), "--from", "2023-01-02",
                "--to", "2023-01-03")  # fmt: skip
        assert r.exit_code == 2, (extra[:40], r.output, r.exception)
        assert r.stderr.count("\n") == 1 and expected in r.stderr, r.stderr


# -- item 7: no more tracebacks ----------------------------------------------------------------


HISTORY_CASES = [
    ("h.json", '[{"rule":"investigational","last_dose":"2022-01-01","half_life":NaN}]',
     "file 'h.json': is not valid JSON: NaN is not a number"),
    ("h.json", '[{"rule":"investigational","last_dose":"2022-01-01","half_life":Infinity}]',
     "file 'h.json': is not valid JSON: Infinity is not a number"),
    ("h.json", '[{"rule":"investigational","last_dose":"2022-01-01","half_life":1e308}]',
     "h.json item 1 half_life 1e+308: must be a positive number of hours, at most 87840"),
    ("h.json", "[" * 100_000 + "]" * 100_000,
     "file 'h.json': is not valid JSON: nested too deeply"),
    ("h.json", '[{"rule":"investigational","last_dose":"2022-01-01","half_life":'
     + "9" * 5000 + "}]", "file 'h.json': is not valid JSON: a number is too long"),
    ("h.csv", "rule,last_dose,half_life\ninvestigational,2022-01-01," + "9" * 5000 + " days\n",
     "h.csv row 2 half_life '999..."),
    ("h.csv", "rule,last_dose,half_life\ninvestigational,2022-01-01,1" + "0" * 300 + " h\n",
     "h.csv row 2 half_life '1000..."),
    ("h.csv", "rule,what\ninvestigational," + "x" * 200_000 + "\n",
     "h.csv row 2: is not valid CSV: field larger than field limit (131072)"),
    ("h.json", '[{"rule":["live_vaccine"]}]',
     "h.json item 1 rule ['live_vaccine']: is required (a washout rule code)"),
    ("h.json", '[{"rule":"live_vaccine","what":' + "[" * 900 + "]" * 900 + "}]",
     "h.json item 1 what [[[[...]]]]: must be text"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "expected"), HISTORY_CASES)
def test_a_hostile_history_is_one_line(tmp_path, monkeypatch, name, text, expected):
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(text)
    one_line(run("eligibility", "--screening", SCREENING, "--history", name), expected)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("1001,W4," + "x" * 140_000 + ",09:00", "field larger than field limit (131072)"),
        ('1001,W4,"2022-08-24,09:00', "a quote is opened and never closed"),
    ],
)
def test_a_bookings_file_the_csv_reader_cannot_read_is_one_line(tmp_path, row, expected):
    bookings = tmp_path / "b.csv"
    bookings.write_text(f"participant,visit,date,time\n{row}\n")
    r = run("agenda", "--bookings", str(bookings), "--from", "2023-01-02", "--to", "2023-01-03")
    one_line(r, f"{bookings}: line 2: is not valid CSV: {expected}")


def test_a_1000_level_toml_table_header_in_a_protocol_is_one_line(tmp_path):
    for text in ("[" + ".".join(["a"] * 1000) + "]\n", ".".join(["a"] * 1000) + " = 1\n"):
        path = tmp_path / "p.toml"
        path.write_text(text + STUDY_TOML)
        r = run("protocol", "check", str(path))
        assert r.exit_code == 2, r.exception  # errors._show recursed through repr
        assert f"error: {path}: a {{'a': {{'a': {{'a': {{...}}}}}}}}: unknown field" in r.stderr


def test_an_error_value_of_any_shape_shows_in_one_short_line():
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    assert str(VisitplanError("f", deep, "r")) == "f {'a': {'a': {'a': {...}}}}: r"
    assert str(VisitplanError("f", 10**5000, "r")) == "f (a number of about 5000 digits): r"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert str(VisitplanError("f", Broken(), "r")) == "f (Broken): r"


def test_plan_to_a_full_device_is_one_line():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "visitplan"]
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [*cmd, "plan", "--participant", "1001", "--screening", SCREENING],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr == "error: standard output: cannot be written: No space left on device\n"


# -- item 10: YAML messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", "file 'p.yaml': is not valid YAML: while parsing a flow sequence..."),
        ("a: !!python/object:os.system x\n",
         "file 'p.yaml': is not valid YAML: could not determine a constructor for the tag..."),
        ("a: b: c\n", "file 'p.yaml': is not valid YAML: mapping values are not allowed here..."),
    ],
)  # fmt: skip
def test_a_yaml_error_says_what_is_wrong(tmp_path, monkeypatch, text, expected):
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(text)
    r = run("protocol", "check", "p.yaml")
    assert r.exit_code == 2
    first = r.stderr.splitlines()[0]
    assert first.startswith("error: " + expected[:-3]), first
    assert "a number is too long" not in r.stderr


def test_a_yaml_protocol_without_pyyaml_says_it_needs_pyyaml(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import yaml

    Path("p.yaml").write_text(yaml.safe_dump({"study": {"id": "X"}}))
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    one_line(
        run("protocol", "check", "p.yaml"),
        "protocol file 'p.yaml': is YAML, which needs PyYAML: pip install 'visitplan[yaml]'",
    )


# -- item 11: duplicate keys, unclosed quotes in a history --------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("h.json", '[{"rule":"live_vaccine","last_dose":"2022-01-01","last_dose":"2021-01-01"}]',
         "h.json item 1 last_dose '2021-01-01': is given twice"),
        ("h.json", '{"history": [], "history": [{"rule": "live_vaccine"}]}',
         "h.json history [{'rule': 'live_vaccine'}]: is given twice"),
        ("h.csv", 'rule,last_dose\nlive_vaccine,"2022-01-01\nlive_vaccine,2022-02-01\n',
         "h.csv row 2: is not valid CSV: a quote is opened and never closed"),
        ("h.csv", "rule,last_dose,last_dose\nlive_vaccine,2022-01-01,2021-01-01\n",
         "h.csv header 'last_dose': column appears twice"),
        ("h.csv", "rule,last_dose\nlive_vaccine,2022-01-01,2021-01-01\n",
         "h.csv row 2 '3 cells': has more cells than the header's 2"),
    ],
)  # fmt: skip
def test_a_history_with_a_key_twice_or_an_unclosed_quote_is_refused(
    tmp_path, monkeypatch, name, text, expected
):
    """Item 11: a duplicate key was kept silently (the last one), an unclosed quote reported
    as a missing date."""
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(text)
    one_line(run("eligibility", "--screening", SCREENING, "--history", name), expected)


# -- item 4 and 7: roster files and workbooks ---------------------------------------------------


def workbook(path: Path, rows: list[list[Any]]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def rezip(path: Path, change: Any) -> None:
    """Rewrite the workbook's zip with ``change(name, data) -> data`` applied to each member."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, change(name, data))


HEADER_ROW = ["participant", "site", "screening", "day1", "flags"]


def test_an_xlsx_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    import datetime as dt

    path = workbook(tmp_path / "bomb.xlsx", [HEADER_ROW, ["1001", None, dt.date(2022, 7, 27)]])
    # 300 MB of spaces inside the sheet's XML: a few hundred kB packed.
    rezip(path, lambda name, data: data.replace(b"<sheetData>", b"<sheetData>" + b" " * 300_000_000)
          if name == "xl/worksheets/sheet1.xml" else data)  # fmt: skip
    assert path.stat().st_size < 1_000_000
    r = run("import", str(path), "--db", str(tmp_path / "r.db"))
    one_line(r, f"roster file '{path}': holds 'xl/worksheets/sheet1.xml', which unpacks ...")
    assert "times larger (at most 100): not a workbook, a zip bomb" in r.stderr
    assert not (tmp_path / "r.db").exists()


def test_an_xlsx_whose_members_unpack_to_too_much_is_refused(tmp_path, monkeypatch):
    from visitplan.store import importing

    path = workbook(tmp_path / "r.xlsx", [HEADER_ROW, ["1001", None, "2022-07-27"]])
    monkeypatch.setattr(importing, "MAX_XLSX_UNPACKED", 1024)
    r = run("import", str(path), "--db", str(tmp_path / "r.db"))
    one_line(r, f"roster file '{path}': unpacks to more than 1 kB: not a roster workbook")


def test_an_xlsx_numeric_cell_holding_text_is_one_line(tmp_path):
    path = workbook(tmp_path / "r.xlsx", [HEADER_ROW, ["1001", None, "2022-07-27"], [1002]])
    rezip(path, lambda name, data: data.replace(b"<v>1002</v>", b"<v>abc</v>")
          if name == "xl/worksheets/sheet1.xml" else data)  # fmt: skip
    r = run("import", str(path), "--db", str(tmp_path / "r.db"))
    one_line(r, f"{path}:3 'ValueError': is a row openpyxl cannot read")
    assert not (tmp_path / "r.db").exists()


def test_an_xlsx_with_an_xml_entity_bomb_is_refused(tmp_path):
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML  # installed with the xlsx extra: openpyxl parses with it
    path = workbook(tmp_path / "r.xlsx", [HEADER_ROW, ["1001", None, "2022-07-27"]])
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)).replace(
        "&lol0;", "lol"
    )
    doctype = f"<!DOCTYPE worksheet [{entities}]>".encode()

    def bomb(name: str, data: bytes) -> bytes:
        if name != "xl/worksheets/sheet1.xml":
            return data
        return doctype + data.replace(b"<t>1001</t>", b"<t>&lol9;</t>")

    rezip(path, bomb)
    r = run("import", str(path), "--db", str(tmp_path / "r.db"))
    one_line(r, f"roster file '{path}': is not a readable .xlsx workbook (EntitiesForbidden)")


def test_an_xlsx_padded_with_a_million_empty_rows_is_refused(tmp_path):
    path = workbook(tmp_path / "r.xlsx", [HEADER_ROW, ["1001", None, "2022-07-27"]])

    def pad(name: str, data: bytes) -> bytes:
        if name != "xl/worksheets/sheet1.xml":
            return data
        row = b'<row r="1000000"><c r="A1000000" t="n"><v>1</v></c></row></sheetData>'
        return data.replace(b"</sheetData>", row).replace(b'ref="A1:E2"', b'ref="A1:E1000000"')

    rezip(path, pad)
    r = run("import", str(path), "--db", str(tmp_path / "r.db"))
    one_line(r, f"{path} 'more than 10,000 rows': is too long for one roster; split it")


def test_an_import_longer_than_its_limit_is_refused_before_the_roster_is_opened(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text(
        "participant,site,screening,day1,flags\n"
        + "".join(f"P{i},,2022-07-27,,\n" for i in range(10_001))
        + "\x00" * 100
    )
    r = run("import", str(roster), "--db", str(tmp_path / "r.db"))
    one_line(r, f"{roster} 'more than 10,000 rows': is too long for one roster; split it")
    assert not (tmp_path / "r.db").exists()


def test_an_xlsx_import_still_reads_dates_numbers_and_blank_columns(tmp_path):
    import datetime as dt

    path = workbook(tmp_path / "r.xlsx", [
        [*HEADER_ROW, None, None],
        [5001.0, "BREST", dt.datetime(2022, 7, 27), dt.date(2022, 8, 30), "wocbp", None],
        [],
        ["5002", None, "2022-08-01"],
    ])  # fmt: skip
    r = run("import", str(path), "--db", str(tmp_path / "r.db"), "--today", "2022-12-01")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == f"imported 2 participants from {path}"


def test_a_site_file_name_with_control_characters_is_refused():
    from visitplan.site import loads_site

    site = (Path(visitplan.__file__).parent / "sites" / "BREST.toml").read_text()
    text = site.replace(
        'name = "Novartis Investigative Site, Brest"', 'name = "Brest\\r\\u001b[2J"'
    )
    with pytest.raises(VisitplanError) as info:
        loads_site(text, source="s.toml")
    assert str(info.value) == (
        "s.toml: site.name 'Brest\\r\\x1b[2J': must not contain control characters or line breaks"
    )
