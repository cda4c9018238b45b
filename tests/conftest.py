from __future__ import annotations

import pytest

import visitplan


@pytest.fixture(scope="session")
def study() -> visitplan.Protocol:
    return visitplan.builtin("NCT05124925")


@pytest.fixture(autouse=True)
def english_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands speak English in the tests (VISITPLAN_LANG=en), as for a user who set it: the
    built-in BREST site file says French. Tests of the site's language unset it, or pass
    --lang (tests/test_i18n_*.py)."""
    monkeypatch.setenv("VISITPLAN_LANG", "en")
