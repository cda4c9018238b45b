"""Fuzzing the protocol reader and the roster CSV reader with hypothesis (bounded for CI).

Every input must parse or raise VisitplanError with a one-line message (tests/fuzzing.py).
Raise VISITPLAN_FUZZ_EXAMPLES for a longer local run, or use scripts/fuzz (atheris); see
docs/reliability.md. Each crash found was fixed and kept as a case in tests/corpus/cases.toml.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzzing import (
    check_protocol_bytes,
    check_protocol_text,
    check_roster_bytes,
    check_roster_text,
)

import visitplan
from visitplan.protocol_file import dumps, to_dict

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("VISITPLAN_FUZZ_EXAMPLES", "75"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
BUILTIN = to_dict(visitplan.builtin("NCT05124925"))
BUILTIN_TOML = dumps(visitplan.builtin("NCT05124925"))

# -- values a hostile file may hold ------------------------------------------------------------
amounts = st.integers(-(10**40), 10**40) | st.integers(-5, 2000)
offset_text = st.builds(
    lambda sign, n, unit: f"{sign}{n} {unit}",
    st.sampled_from(["", "-", "+"]),
    st.integers(0, 10**35) | st.integers(0, 400),
    st.sampled_from(["days", "day", "weeks", "months", "years", "fortnights"]),
)
scalars = (
    st.none()
    | st.booleans()
    | amounts
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | offset_text
    | st.sampled_from(["screening", "last-dose", "D1", "W4", "EOS", "FU", "", "Europe/Paris"])
)
valid_offsets = st.builds(
    lambda n, unit: f"{n} {unit}",
    st.integers(-400, 400),
    st.sampled_from(["days", "weeks", "months"]),
)
junk: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a parsed document."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


def leaves(doc: Any) -> list[Any]:
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in leaves(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in leaves(v)]
    return [doc]


PLAUSIBLE_TEXT = sorted({x for x in leaves(BUILTIN) if isinstance(x, str)})


@st.composite
def near_valid_protocols(draw: st.DrawFn) -> Any:
    """The built-in protocol with 1-3 leaf values swapped for values of the same type."""
    doc = json.loads(json.dumps(BUILTIN))
    leaf_paths = [p for p in paths(doc)[1:] if isinstance(_get(doc, p), str | int | float)]
    for path in draw(st.lists(st.sampled_from(leaf_paths), min_size=1, max_size=3)):
        parent = _get(doc, path[:-1])
        if isinstance(parent[path[-1]], str):
            parent[path[-1]] = draw(st.sampled_from(PLAUSIBLE_TEXT) | valid_offsets)
        else:
            parent[path[-1]] = draw(st.integers(-3, 1002) | amounts)
    return doc


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated_protocols(draw: st.DrawFn) -> Any:
    """The built-in protocol with a few values replaced by junk, deleted or added."""
    doc = json.loads(json.dumps(BUILTIN))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths(doc)[1:]))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "plausible", "plausible", "delete", "add"]))
        if action == "plausible":
            # A value another field of the protocol holds, or a valid offset: near-valid files
            # get past the reader and exercise the engine.
            old = parent[path[-1]]
            if isinstance(old, str):
                parent[path[-1]] = draw(st.sampled_from(PLAUSIBLE_TEXT) | valid_offsets)
            elif isinstance(old, int | float):
                parent[path[-1]] = draw(st.integers(-3, 1002) | amounts)
            else:
                parent[path[-1]] = draw(junk)
        elif action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(junk)
        else:
            parent.append(draw(junk))
        if not paths(doc)[1:]:
            break
    return doc


@st.composite
def mutated_text(draw: st.DrawFn, base: str) -> str:
    """``base`` with random slices deleted, duplicated or replaced by random text."""
    text = base
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        text = (
            text[:i]
            + draw(
                st.sampled_from(["", text[i:j] * 2, "\x00", "[", "\ufeff"]) | st.text(max_size=12)
            )
            + text[j:]
        )
    return text


@FUZZ
@given(mutated_protocols())
def test_fuzz_protocol_structure_json(doc):
    check_protocol_text(json.dumps(doc), "json")


@FUZZ
@given(near_valid_protocols())
def test_fuzz_protocol_near_valid(doc):
    check_protocol_text(json.dumps(doc), "json")


@FUZZ
@given(mutated_protocols())
def test_fuzz_protocol_structure_toml(doc):
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):  # None, NaN or a bare list: TOML cannot say it
        return
    check_protocol_text(text, "toml")


@FUZZ
@given(mutated_text(BUILTIN_TOML))
def test_fuzz_protocol_text_toml(text):
    check_protocol_text(text, "toml")


@FUZZ
@given(mutated_text(json.dumps(BUILTIN, indent=1)))
def test_fuzz_protocol_text_json(text):
    check_protocol_text(text, "json")


@FUZZ
@given(st.text(max_size=200), st.sampled_from(["toml", "json"]))
def test_fuzz_protocol_random_text(text, fmt):
    check_protocol_text(text, fmt)


@FUZZ
@given(
    st.binary(max_size=300)
    | st.builds(
        lambda t, enc: t.encode(enc, errors="replace"),
        mutated_text(BUILTIN_TOML),
        st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig", "cp1252"]),
    ),
    st.sampled_from([".toml", ".json"]),
)
def test_fuzz_protocol_bytes(tmp_path: Path, data, suffix):
    check_protocol_bytes(data, tmp_path, suffix)


# -- rosters -------------------------------------------------------------------------------------
COLUMNS = ["participant", "site", "screening", "day1", "flags"]
cells = (
    st.sampled_from(["1001", "P-7", "BREST", "2022-07-27", "2023-02-29", "2922-01-01", "wocbp",
                     "hbcab_positive;wocbp", "", "=1+1", "@SUM(A1)", "-2+3", "../x", "Jane Doe",
                     "2022-08-31", "\ufeff", "\x00", '"', "a\nb", "a\rb"])
    | st.text(max_size=12)
)  # fmt: skip


@st.composite
def rosters(draw: st.DrawFn) -> str:
    header = (
        draw(st.permutations(COLUMNS))
        if draw(st.booleans())
        else draw(st.lists(st.sampled_from([*COLUMNS, "name", ""]), min_size=0, max_size=6))
    )
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=7), max_size=6))
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


@FUZZ
@given(rosters())
def test_fuzz_roster_structure(text):
    check_roster_text(text)


@FUZZ
@given(
    st.text(
        alphabet=st.sampled_from(list('participant,screening\n\r"0123456789-;=_ \x00\ufeff')),
        max_size=200,
    )
    | st.text(max_size=200)
)
def test_fuzz_roster_random_text(text):
    check_roster_text("participant,site,screening,day1,flags\n" + text)
    check_roster_text(text)


@FUZZ
@given(
    st.binary(max_size=200)
    | st.builds(
        lambda t, enc: t.encode(enc, errors="replace"),
        rosters(),
        st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"]),
    )
)
def test_fuzz_roster_bytes(tmp_path: Path, data):
    check_roster_bytes(data, tmp_path)
