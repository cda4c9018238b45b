"""The translation catalogs: every message translated with the same placeholders, the catalog
current with the sources, the compiled catalog the one the package reads, and a built wheel
that carries it (docs/translating.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from visitplan import i18n

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "src" / "visitplan" / "locale"
CATALOGS = sorted(LOCALE.glob("*/LC_MESSAGES/visitplan.po"))

#: ``{name}``, ``{value:g}`` (str.format) and ``%(name)s``, ``%d`` (printf, the templates').
_BRACE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*(?::[^{}]*)?)\}(?!\})")
_PRINTF = re.compile(r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifgr%]")


def placeholders(text: str) -> list[str]:
    """Every placeholder of ``text``, sorted (a repeated one counts twice)."""
    found = _BRACE.findall(text) + [p for p in _PRINTF.findall(text) if p != "%%"]
    return sorted(found)


def catalog(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as f:
        return read_po(f, locale=path.parts[-3])


def source_messages() -> set[str]:
    """The message ids extraction finds in the sources (babel.cfg), as ``scripts/i18n`` does."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "src" / "visitplan"), method_map, options_map
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_french_is_a_catalog():
    assert CATALOGS, "no catalog under src/visitplan/locale"
    assert "fr" in i18n.LANGUAGES
    assert {p.parts[-3] for p in CATALOGS} == set(i18n.LANGUAGES) - {i18n.DEFAULT}


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parts[-3])
def test_every_message_is_translated_with_the_same_placeholders(path):
    problems = []
    for m in catalog(path):
        if not m.id:
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if "fuzzy" in m.flags or not all(strings):
            problems.append(f"not translated: {ids[0]!r}")
            continue
        want = placeholders(ids[-1])
        if len(ids) == 2 and placeholders(ids[0]) != want:
            problems.append(f"singular and plural differ in placeholders: {ids!r}")
        for s in strings:
            if placeholders(s) != want:
                problems.append(f"{ids[0]!r}: {s!r} has {placeholders(s)}, wants {want}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def test_the_placeholder_check_reads_both_styles():
    assert placeholders("Booked {code} {visit} on {when}.") == ["code", "visit", "when"]
    assert placeholders("{value:g} {unit}") == ["unit", "value:g"]
    assert placeholders("%(num)d visits on %(day)s, 100%%") == ["%(day)s", "%(num)d"]
    assert placeholders("{{literal}} braces") == []
    assert placeholders("Réservé {code} le {quand}") != placeholders("Booked {code} on {when}")


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parts[-3])
def test_the_catalog_is_current_with_the_sources(path):
    found = source_messages()
    assert len(found) > 300, "extraction found too little: is babel.cfg right?"
    listed = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog(path) if m.id}
    template = {
        m.id[0] if isinstance(m.id, tuple) else m.id
        for m in catalog(LOCALE / "visitplan.pot")
        if m.id
    }
    hint = "run: bash scripts/i18n update, then translate"
    assert not sorted(found - listed), f"messages missing from {path.name} ({hint})"
    assert not sorted(listed - found), f"messages no longer in the sources ({hint})"
    assert template == found, f"visitplan.pot is stale ({hint})"


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.parts[-3])
def test_the_package_reads_the_compiled_catalog(path):
    """The .mo the build compiled (next to the .po for an editable install) says what the .po
    says: a .po edited since must be compiled again (bash scripts/i18n compile)."""
    lang = path.parts[-3]
    i18n._catalog.cache_clear()
    with i18n.use(lang):
        for m in catalog(path):
            if not m.id or "fuzzy" in m.flags:
                continue
            if isinstance(m.id, tuple):
                assert i18n.ngettext(m.id[0], m.id[1], 5) == m.string[1], m.id
            else:
                assert i18n._(m.id) == m.string, m.id


def test_an_installed_wheel_speaks_french(tmp_path):
    """The wheel carries the compiled catalogs (the build hook) and, installed, speaks French."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("visitplan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "visitplan/locale/fr/LC_MESSAGES/visitplan.mo" in names
    assert not any(n.endswith(".mo") and "/fr/" not in n for n in names)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--disable-pip-version-check", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("VISITPLAN_LANG", None)
    script = (
        "import visitplan, visitplan.i18n as i; print(visitplan.__file__);"
        "i.set_language('fr'); print(i._('Window'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env
    ).stdout.splitlines()
    assert out[0].startswith(str(target)), out
    assert out[1] == "Fenêtre", out
    shown = subprocess.run(
        [sys.executable, "-m", "visitplan", "--lang", "fr", "protocol", "show"],
        check=True, capture_output=True, text=True, env={**env, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    assert "Fin de traitement" in shown and "Biopsie des glandes salivaires accessoires" in shown
