"""`visitplan agenda`, `book` and `chart` end to end through the real entry point."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest
from tests import cli as harness
from tests.cli import Result


def run(*args: str, cwd: Path | None = None) -> Result:
    return harness.run(*args, cwd=cwd, columns=120)


def one_line_error(r: Result, start: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"error: {start}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_agenda_shows_holidays_with_their_name_and_proposals():
    r = run(
        "agenda", "--from", "2023-04-01", "--to", "2023-06-30", "--propose", "--today", "2023-04-01"
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("BREST (Europe/Paris, clinic 08:30-17:00, capacity biopsy 2/day)")
    assert "2023-05-01 Mon  load 1  CLOSED (public holiday: Labor Day)" in lines
    assert "2023-05-29 Mon  load 1  CLOSED (public holiday: Pentecost Monday)" in lines
    # The visit on the closed day lists the open days of its window, nearest first.
    w8 = next(line for line in lines if " W8 " in line).split()
    assert w8[:2] == ["1003", "W8"] and w8[-3:] == ["2023-05-02,", "2023-05-03,", "2023-04-28"]
    assert "6 days with visits, 2 closed, 0 over capacity" in lines
    proposals = lines[lines.index("proposals (nearest; nothing booked): 2 of 6 visits need "
                                  "another day") + 1 :]  # fmt: skip
    assert proposals[0].split() == ["Participant", "Visit", "Target", "Proposed", "Why"]
    assert proposals[1].split()[:4] == ["1003", "W8", "2023-05-01", "2023-05-02"]


def test_agenda_flags_a_day_over_capacity(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "participant,site,screening,day1,flags\n"
        "401,BREST,2026-01-01,2026-01-05,\n402,BREST,2026-01-01,2026-01-05,\n"
        "403,BREST,2026-01-01,2026-01-05,\n"
    )
    r = run("agenda", "--roster", str(roster), "--from", "2026-06-22", "--to", "2026-06-22")
    assert r.returncode == 0, r.stderr
    assert "2026-06-22 Mon  load 3  OVER CAPACITY (biopsy 3/2)" in r.stdout


def test_book_writes_the_file_and_refuses_without_touching_it(tmp_path):
    bookings = tmp_path / "bookings.csv"
    r = run("book", "--bookings", str(bookings), "1001", "EOT", "2023-02-15", "09:00")
    assert r.returncode == 0, r.stderr
    assert "booked 1001 EOT on 2023-02-15 09:00 Europe/Paris (UTC+01:00)" in r.stdout
    assert bookings.read_text() == "participant,visit,date,time\n1001,EOT,2023-02-15,09:00\n"
    before = bookings.read_bytes()
    for args, message in [
        (["1001", "EOT", "2023-02-18", "09:00"], "date '2023-02-18': is not bookable at BREST"),
        (["1001", "EOT", "2023-03-01", "09:00"], "date '2023-03-01': is outside EOT's window"),
        (["1001", "EOT", "2023-02-15", "18:00"], "time '18:00': is outside clinic hours"),
        (["1001", "EOT", "15/02/2023", "09:00"], "date '15/02/2023': must be a date"),
        (["1001", "NOPE", "2023-02-15", "09:00"], "visit 'NOPE': is not a planned visit"),
    ]:
        one_line_error(run("book", "--bookings", str(bookings), *args), message)
        assert bookings.read_bytes() == before
    r = run("agenda", "--bookings", str(bookings), "--from", "2023-02-15", "--to", "2023-02-15")
    assert "1001 EOT End of treatment 09:00 booked 2023-02-08..2023-02-22" in [
        " ".join(line.split()) for line in r.stdout.splitlines()
    ]


def test_book_refuses_a_dst_gap_at_a_site_open_on_sundays(tmp_path):
    site = tmp_path / "ALWAYS.toml"
    site.write_text(
        '[site]\ncode = "ALWAYS"\ntimezone = "Europe/Paris"\ncountry = "FR"\n'
        '[clinic]\ndays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]\n'
        'opens = "00:00"\ncloses = "23:59"\n'
    )
    roster = tmp_path / "roster.csv"
    roster.write_text("participant,site,screening,day1,flags\n2001,,2026-02-01,2026-03-01,\n")
    base = ["book", "--site", str(site), "--roster", str(roster), "--bookings"]
    out = str(tmp_path / "b.csv")
    one_line_error(
        run(*base, out, "2001", "W4", "2026-03-29", "02:30"),
        "appointment time (Europe/Paris) '2026-03-29 02:30': does not exist in this zone",
    )
    r = run(*base, out, "2001", "W4", "2026-03-29", "09:00")
    assert r.returncode == 0, r.stderr
    assert "2026-03-29 09:00 Europe/Paris (UTC+02:00)" in r.stdout


def test_bad_site_and_roster_options_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\ncode = "X"\ntimezone = "Mars/Olympus"\ncountry = "FR"\n')
    one_line_error(
        run("agenda", "--site", str(bad), "--from", "2023-01-01", "--to", "2023-01-31"),
        f"{bad}: site.timezone 'Mars/Olympus': is not a known IANA time zone",
    )
    one_line_error(
        run("agenda", "--from", "2023-02-01", "--to", "2023-01-31"),
        "--to '2023-01-31': is before --from (2023-02-01)",
    )
    one_line_error(run("chart", "timeline", "-o", str(tmp_path / "x.pdf")), "--output")


def test_timeline_svg_names_participants_and_visits(tmp_path):
    out = tmp_path / "timeline.svg"
    r = run("chart", "timeline", "--today", "2023-03-01", "-o", str(out))
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    root = ElementTree.fromstring(svg.encode())  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    for code in ("1001", "1002", "1003"):
        assert f"{code}  EOT" in svg and f"{code}  W20" in svg
    assert "today 2023-03-01" in svg


def test_timeline_range_keeps_only_the_visits_in_it(tmp_path):
    out = tmp_path / "t.svg"
    r = run("chart", "timeline", "--from", "2023-04-01", "--to", "2023-06-30",
            "--today", "2023-05-01", "-o", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    assert "1003  W8" in svg and "1001  FU1" in svg
    assert "1001  W4" not in svg  # autumn 2022, out of range
    assert "target on a closed day" in svg  # 1003's W8 on 1 May 2023 is crossed out
    r = run("chart", "timeline", "--from", "2022-10-01", "--to", "2022-10-31",
            "--today", "2022-10-03", "-o", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    assert "1001  W8" in svg and "target on a closed day" not in svg


def test_load_chart_svg_and_png(tmp_path):
    svg_path = tmp_path / "load.svg"
    r = run("chart", "load", "--from", "2023-04-01", "--to", "2023-06-30", "-o", str(svg_path))
    assert r.returncode == 0, r.stderr
    svg = svg_path.read_text()
    assert "BREST load per day, 2023-04-01 to 2023-06-30" in svg
    assert "closed: 1003 W8" in svg and "closed: 1003 W12" in svg
    png = tmp_path / "load.png"
    r = run("chart", "load", "--by", "week", "--from", "2022-07-01", "--to", "2023-12-31",
            "-o", str(png))  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.parametrize("kind", ["timeline", "load"])
def test_png_charts_decode(tmp_path, kind):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    out = tmp_path / f"{kind}.png"
    r = run("chart", kind, "--from", "2023-01-01", "--to", "2023-03-31",
            "--today", "2023-02-01", "-o", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    pixels = mpimg.imread(out)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 600
    assert pixels.std() > 0.01  # something is drawn, not a blank image
