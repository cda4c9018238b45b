from __future__ import annotations

from collections.abc import Iterator

import pytest

import visitplan


@pytest.fixture(scope="session")
def study() -> visitplan.Protocol:
    return visitplan.builtin("NCT05124925")


@pytest.fixture(autouse=True, scope="session")
def english_commands() -> Iterator[None]:
    """Commands speak English in the tests (VISITPLAN_LANG=en), as for a user who set it: the
    built-in BREST site file says French. Tests of the site's language unset it (monkeypatch),
    or pass --lang (tests/test_i18n_*.py). Session-wide, so that module-scoped fixtures (a
    roster built once per module, subprocesses included) speak English as well."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VISITPLAN_LANG", "en")
        yield
