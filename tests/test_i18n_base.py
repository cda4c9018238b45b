"""The language of a context (visitplan.i18n): set per block, English by default, refused when
visitplan does not speak it; no leak between threads or tasks."""

from __future__ import annotations

import threading

import pytest

import visitplan
from visitplan import i18n


def test_english_is_the_default_and_a_block_sets_its_language():
    assert i18n.language() == "en"
    with i18n.use("fr"):
        assert i18n.language() == "fr"
        with i18n.use(None):
            assert i18n.language() == "fr"
    assert i18n.language() == "en"
    assert i18n._("Due") == "Due"
    assert i18n.ngettext("{n} visit", "{n} visits", 2) == "{n} visits"
    assert i18n.N_("Overdue") == "Overdue"


def test_an_unknown_language_is_refused_in_one_line():
    with pytest.raises(visitplan.VisitplanError) as info, i18n.use("de"):
        pass
    assert str(info.value) == "--lang 'de': must be one of: en, fr"


def test_each_thread_has_its_own_language():
    seen: list[str] = []
    with i18n.use("fr"):

        def other() -> None:
            seen.append(i18n.language())

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == ["en"]
