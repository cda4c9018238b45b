"""Helpers shared by the roster store's tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def dump(db: Path) -> list[str]:
    """Every table's schema and rows, to compare a store before and after a refused change."""
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()
