from __future__ import annotations

import pytest

import visitplan


@pytest.fixture(scope="session")
def study() -> visitplan.Protocol:
    return visitplan.builtin("NCT05124925")
