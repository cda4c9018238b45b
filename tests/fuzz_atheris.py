"""Coverage-guided fuzzing of the readers with atheris: a longer local run than CI's.

Run through scripts/fuzz (see docs/reliability.md), e.g. ``scripts/fuzz protocol-toml 600``.
The oracle is the one the CI fuzz tests use (tests/fuzzing.py): every input parses or raises a
one-line VisitplanError; any other exception stops atheris and saves the input as crash-*.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris

with atheris.instrument_imports(include=["visitplan"]):
    from tests.fuzzing import check_protocol_text, check_roster_text

TARGETS: dict[str, Callable[[str], None]] = {
    "protocol-toml": lambda text: check_protocol_text(text, "toml"),
    "protocol-json": lambda text: check_protocol_text(text, "json"),
    "roster": check_roster_text,
}


def main() -> None:
    target = TARGETS[sys.argv.pop(1)]

    def one_input(data: bytes) -> None:
        target(data.decode("utf-8", errors="replace"))

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
