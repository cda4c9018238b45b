"""Corpus inputs too large to keep in git, written at test time (see cases.toml)."""

from __future__ import annotations

from pathlib import Path

HEADER = "participant,site,screening,day1,flags\n"
#: Rows of the huge roster: enough to show the reader streams and still names the bad line,
#: with its repeated row the most a roster file may hold (roster_csv.MAX_ROSTER_ROWS).
HUGE_ROWS = 99_999


def write_generated(folder: Path) -> None:
    """Write the generated corpus files under ``folder`` (protocols/ and rosters/)."""
    protocols, rosters = folder / "protocols", folder / "rosters"
    protocols.mkdir(parents=True, exist_ok=True)
    rosters.mkdir(parents=True, exist_ok=True)
    (protocols / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (protocols / "deep.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    # 5 MB of comment lines: valid TOML in form, but no protocol is this big.
    (protocols / "huge.toml").write_text(("# " + "x" * 98 + "\n") * 50_000)
    rows = "".join(f"P{i},BREST,2022-07-27,,\n" for i in range(HUGE_ROWS))
    (rosters / "huge.csv").write_text(HEADER + rows + "P17,BREST,2022-07-27,,\n")
    # One row more than a roster file may hold: refused without reading the rest.
    rows = "".join(f"P{i},BREST,2022-07-27,,\n" for i in range(100_001))
    (rosters / "too-long.csv").write_text(HEADER + rows + "P\x00,,\n" * 10)
    (rosters / "big-cell.csv").write_text(HEADER + '1001,"' + "x" * 200_000 + '",2022-07-27,,\n')
