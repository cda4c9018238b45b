"""Every file a user names is read the same way: one-line errors, never a traceback."""

from __future__ import annotations

import pytest

from visitplan.booking import load_bookings
from visitplan.eligibility import load_history
from visitplan.errors import VisitplanError
from visitplan.fileio import read_text
from visitplan.protocol_file import load
from visitplan.roster_csv import load_roster
from visitplan.site import load_site

LOADERS = [
    ("site file", lambda p: load_site(p), ".toml"),
    ("bookings file", lambda p: load_bookings(p, "Europe/Paris"), ".csv"),
    ("roster file", lambda p: load_roster(p), ".csv"),
    ("history file", lambda p: load_history(p), ".csv"),
    ("protocol file", lambda p: load(p), ".toml"),
]


@pytest.mark.parametrize(("what", "loader", "suffix"), LOADERS, ids=[w for w, _, _ in LOADERS])
def test_missing_and_non_utf8_files_are_one_line_errors(tmp_path, what, loader, suffix):
    missing = tmp_path / f"missing{suffix}"
    with pytest.raises(VisitplanError) as info:
        loader(missing)
    assert str(info.value) == f"{what} '{missing}': does not exist"
    latin1 = tmp_path / f"latin1{suffix}"
    latin1.write_bytes("Brest, clinique é".encode("latin-1"))
    with pytest.raises(VisitplanError) as info:
        loader(latin1)
    assert str(info.value) == f"{what} '{latin1}': must be UTF-8 text"


@pytest.mark.parametrize(
    ("what", "loader"),
    [(w, f) for w, f, _ in LOADERS if w in ("site file", "bookings file", "history file")],
)
def test_a_folder_given_as_a_file_is_a_one_line_error(tmp_path, what, loader):
    # These three used to let IsADirectoryError through as a traceback.
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(VisitplanError) as info:
        loader(folder)
    assert str(info.value) == f"{what} '{folder}': cannot be read: Is a directory"


def test_read_text_accepts_a_bom_by_default(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(b"\xef\xbb\xbfparticipant\n")
    assert read_text(f, "roster file") == "participant\n"
    assert read_text(f, "site file", encoding="utf-8") == "\ufeffparticipant\n"
