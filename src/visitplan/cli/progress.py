"""A progress bar for long commands (exports, imports, publishes): on a terminal only.

The bar is drawn by rich on stderr when stderr is a terminal, and disappears when the work is
done; when stderr is piped or redirected (scripts, CI, a log file) nothing extra is written.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, overload

Advance = Callable[[int], None]
T = TypeVar("T")


def _nothing(_: int = 1) -> None:
    return None


@contextlib.contextmanager
def progress(what: str, total: int | None) -> Iterator[Advance]:
    """A bar for ``total`` steps described by ``what``; yields ``advance(steps)``."""
    if not sys.stderr.isatty():
        yield _nothing
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(what, total=total)

        def advance(steps: int = 1) -> None:
            bar.advance(task, steps)

        yield advance


class Counted(Sequence[T]):
    """``items`` as a sequence that advances the bar as it is iterated (a roster import walks
    its participants once, checking and planning each)."""

    def __init__(self, items: Sequence[T], advance: Advance) -> None:
        self._items = items
        self._advance = advance

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        return self._items[index]

    def __iter__(self) -> Iterator[T]:
        for item in self._items:
            yield item
            self._advance(1)
